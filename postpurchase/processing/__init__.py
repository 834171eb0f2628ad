"""Turning inbox events into customers, orders and scheduled touchpoints.

``drain.process_inbox`` drains the inbox in claimed batches; ``records`` upserts what the
events describe; ``planning`` plans (with ``campaigns.decisions``) and cancels touchpoints;
``followups`` plans what no event announces (assumed deliveries, lapsed customers);
``simulation`` replays recent history (read back by ``history``) against a campaigns file in
scratch databases, for a what-if.
"""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "batch",
    "drain",
    "followups",
    "planning",
    "replan",
    "simulation",
]
