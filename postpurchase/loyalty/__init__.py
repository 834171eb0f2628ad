"""Loyalty: points earned and reversed in an append-only ledger (``ledger``, ``earning``),
their expiry, RFM tiers and their ``tier.changed`` events (``tiers``, ``tier_events``)."""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "config",
    "customers",
    "earning",
    "estimate",
    "expiry",
    "ledger",
    "ledger_rows",
    "tiers",
]
