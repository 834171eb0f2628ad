"""Channels: where a rendered message goes (outbox files, SendGrid, Twilio).

Every sender returns the provider's message id or raises one of the ProviderError classes of
``postpurchase.exceptions``; ``delivery.send_with_retries`` decides what to do about them.
"""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "configured",
    "delivery",
    "ratelimit",
    "senders",
]
