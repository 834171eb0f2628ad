"""Messages: what a touchpoint says (templates, context, SMS segments) and its signed links."""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "context",
    "order_preview",
    "rendering",
    "sms_segments",
    "tokens",
]
