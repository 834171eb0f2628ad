"""The shop's product catalogue: what order lines do not carry (type, tags, collections,
image, page), from product webhooks (``products``) or the platforms' APIs (``lookup``)."""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "lookup",
    "platform_api",
    "products",
]
