"""The engine's own database: models, sessions, migrations and claim helpers."""
