"""The journey vocabulary: what can start a campaign, what stops one, and what each leaves on
an order.

One place for the words every stage uses, so planning, the send-time gates, processing, the
campaign timeline and the config agree by construction:

- ``Trigger``: the events a campaign can start from; ``ANCHORS`` names the order timestamp each
  order trigger starts from (and which journey timestamp an event sets on its order).
- ``Canceller``: the events that make planned touchpoints moot; ``CANCEL_STATES`` names the
  order state each leaves behind, which is what the send-time gate re-checks.
- ``order_states`` and ``is_refunded``: which of those states an order is in now.
- ``PAID_STATUSES``: the platform statuses that prove an order was paid.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

from postpurchase.events import EventType

# A synthetic trigger: no event carries it, a periodic planning step finds lapsed customers.
CUSTOMER_LAPSED = "customer.lapsed"
TIER_CHANGED = "tier.changed"
# Rewards (postpurchase.rewards.messages): a code was issued; points expire soon.
REWARD_ISSUED = "reward.issued"
POINTS_EXPIRING = "points.expiring"
# Triggers about a customer rather than an order.
CUSTOMER_TRIGGERS = frozenset({TIER_CHANGED, CUSTOMER_LAPSED, REWARD_ISSUED, POINTS_EXPIRING})

# Events a campaign can start from: the journey of an order, a tier change, or a lapse.
Trigger = Literal[
    "order.placed",
    "order.paid",
    "order.fulfilled",
    "order.delivered",
    "order.refunded",
    "order.cancelled",
    "return.requested",
    "review.submitted",
    "feedback.negative",
    "tier.changed",
    "customer.lapsed",
    "reward.issued",
    "points.expiring",
]
# Events that make planned touchpoints moot. ``order.placed`` only makes sense for
# customer-level campaigns (a new purchase ends a lapse).
Canceller = Literal[
    "order.refunded", "order.cancelled", "return.requested", "review.submitted", "order.placed"
]
CANCELLING_EVENTS: frozenset[str] = frozenset(get_args(Canceller))

# Which journey timestamp an event sets on its order.
EVENT_TIMESTAMPS: dict[str, str] = {
    EventType.ORDER_PLACED: "placed_at",
    EventType.ORDER_PAID: "paid_at",
    EventType.ORDER_FULFILLED: "fulfilled_at",
    EventType.ORDER_DELIVERED: "delivered_at",
    EventType.ORDER_CANCELLED: "cancelled_at",
    EventType.RETURN_REQUESTED: "returned_at",
    EventType.REVIEW_SUBMITTED: "reviewed_at",
}
# The order timestamp each trigger starts from (win-back: the last order's placement).
ANCHORS: dict[str, str] = EVENT_TIMESTAMPS | {CUSTOMER_LAPSED: "placed_at"}

# The order states a campaign's cancel rules come down to at send time.
ORDER_STATES = ("cancelled", "refunded", "returned", "reviewed")
# A cancelling event, as the order state it leaves (``order.placed`` leaves none).
CANCEL_STATES: dict[str, str] = {
    "order.cancelled": "cancelled",
    "order.refunded": "refunded",
    "return.requested": "returned",
    "review.submitted": "reviewed",
}

# Shopify's financial statuses of a paid order, and WooCommerce's order statuses (kept as
# financial_status) that follow payment: an order seen in one of them has been paid, whatever
# event told us.
PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded", "processing", "completed"})
_REFUNDED_STATUSES = ("refunded", "partially_refunded")
_CANCELLED_STATUSES = ("voided", "cancelled")


def in_paid_status(financial_status: str | None) -> bool:
    """Whether the platform's status says the order has been paid."""
    return (financial_status or "").lower() in PAID_STATUSES


def is_refunded(refunded_amount: Decimal | int, financial_status: str | None) -> bool:
    """A refund on record, or a status that says so: an order set to refunded may list no
    refund (yet), and a partial refund counts."""
    return refunded_amount > 0 or financial_status in _REFUNDED_STATUSES


def order_states(
    *,
    cancelled_at: datetime | None,
    financial_status: str | None,
    refunded_amount: Decimal | int,
    returned_at: datetime | None,
    reviewed_at: datetime | None,
    status_cancels: bool = True,
) -> set[str]:
    """Which of ORDER_STATES an order is in now.

    ``status_cancels``: a voided or cancelled payment status counts as cancelled too (the
    send-time gate); planning reads cancellation from ``cancelled_at`` only, and leaves a
    touchpoint planned for such an order to the gate.
    """
    states = set()
    if cancelled_at is not None or (status_cancels and financial_status in _CANCELLED_STATUSES):
        states.add("cancelled")
    if is_refunded(refunded_amount, financial_status):
        states.add("refunded")
    if returned_at is not None:
        states.add("returned")
    if reviewed_at is not None:
        states.add("reviewed")
    return states
