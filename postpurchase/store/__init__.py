"""The engine's own database: models, sessions, migrations and claim helpers."""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "claims",
    "columns",
    "database",
    "membership",
    "models",
    "schema",
    "statements",
    "status",
]
