"""The webhook app: intake from commerce platforms and provider feedback (FastAPI)."""
