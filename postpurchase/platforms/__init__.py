"""Normalisers from each platform's webhook JSON to ``postpurchase.events.CanonicalEvent``."""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "fields",
    "generic",
    "shopify",
    "shopify_products",
    "woocommerce",
    "woocommerce_products",
]
