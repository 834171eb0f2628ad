"""The webhook app: intake from commerce platforms and provider feedback (FastAPI)."""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "app",
    "opt_out_spool",
    "server",
    "signatures",
]
