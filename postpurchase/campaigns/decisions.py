"""The planning rule: for one campaign and what is known of an order and its customer, the
steps to send with their due times, or the reason none is planned.

Pure (no database), so the processing DAG (``processing.planning``), the campaign timeline
and the reach estimate apply the very same rule. ``Facts`` is what conditions, gates and send
windows look at, built by the ``*_context`` functions from a stored row or a snapshot alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from postpurchase.campaigns.conditions import ConditionError
from postpurchase.campaigns.config import Campaign
from postpurchase.journey import CANCEL_STATES, order_states
from postpurchase.store.models import Channel

_ADDRESS = {Channel.EMAIL: "email", Channel.SMS: "phone"}


# Occurrences, steps and decisions are named tuples, not frozen dataclasses: planning makes
# them for every event and every campaign it triggers, and a frozen dataclass took three to
# four times as long to make.


class Occurrence(NamedTuple):
    """A trigger at a moment; ``order_id`` is None for customer-level triggers."""

    trigger: str
    at: datetime
    customer_id: int
    order_id: int | None
    subject_key: str
    tier: dict[str, Any] | None = None
    review: dict[str, Any] | None = None  # review.submitted: {rating, product_id}


class Step(NamedTuple):
    """One message to plan."""

    step: int
    channel: Channel
    due_at: datetime


class Decision(NamedTuple):
    """Steps to plan, or (when empty) the reason nothing is planned."""

    steps: tuple[Step, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class Facts:
    """What conditions, gates and send windows look at; see ``conditions`` for the shape."""

    order: dict[str, Any] | None
    customer: dict[str, Any]
    items: list[dict[str, Any]]
    zone: ZoneInfo
    shop: str = ""  # the customer's shop: what the touchpoints planned from these facts carry

    @cached_property
    def order_states(self) -> set[str]:
        """What each cancelling event leaves on the order (see ``decide``), found once for
        all the campaigns the facts are decided for; empty without an order."""
        if self.order is None:
            return set()
        return order_states(
            cancelled_at=self.order.get("cancelled_at"),
            financial_status=self.order.get("financial_status"),
            refunded_amount=self.order.get("refunded_amount", 0),
            returned_at=self.order.get("returned_at"),
            reviewed_at=self.order.get("reviewed_at"),
            status_cancels=False,
        )

    def context(
        self, tier: dict[str, Any] | None, review: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "order": self.order,
            "customer": self.customer,
            "items": self.items,
            "tier": tier,
            "review": review,
        }


ITEM_FIELDS = (
    "product_id",
    "title",
    "product_type",
    "vendor",
    "sku",
    "quantity",
    "unit_price",
    "image_url",
    "product_url",
)
# What the catalogue adds to a line (see ``catalogue.products.with_catalogue``).
_CATALOGUE_FIELDS = ("tags", "collections")


def item_context(item: Any) -> dict[str, Any]:
    """An order line (stored row or snapshot) as conditions see it, before the catalogue
    completes it: no tags or collections yet."""
    context = {name: getattr(item, name, None) for name in ITEM_FIELDS}
    context.update((name, list(getattr(item, name, None) or [])) for name in _CATALOGUE_FIELDS)
    return context


def order_context(
    order: Any, items: Sequence[dict[str, Any]], *, points_earned: int = 0
) -> dict[str, Any]:
    """An order (stored row or snapshot) as conditions see it; absent timestamps are None.

    ``points_earned`` is what the order brought in loyalty points (awards less reversals):
    0 for an order in another currency than the shop's, which earns nothing by rule.
    """
    context = {
        name: getattr(order, name, None)
        for name in (
            "name",
            "currency",
            "total",
            "subtotal",
            "total_tax",
            "total_discounts",
            "total_shipping",
            "financial_status",
            "fulfillment_status",
            "placed_at",
            "paid_at",
            "fulfilled_at",
            "delivered_at",
            "delivery_confirmed_at",  # None while delivery is only assumed
            "cancelled_at",
            "returned_at",
            "reviewed_at",
        )
    }
    context["refunded_amount"] = getattr(order, "refunded_amount", None) or 0
    context["item_count"] = sum(item["quantity"] for item in items)
    context["points_earned"] = points_earned
    for key, name in (("skus", "sku"), ("vendors", "vendor")):
        context[key] = sorted({item[name] for item in items if item[name]})
    # Lower-cased: a condition need not guess how the shop capitalised "Electronics".
    context["product_types"] = sorted(
        {item["product_type"].lower() for item in items if item.get("product_type")}
    )
    for key, name in (("product_tags", "tags"), ("collections", "collections")):
        context[key] = sorted({value.lower() for item in items for value in item.get(name, ())})
    return context


def customer_context(customer: Any) -> dict[str, Any]:
    """A customer (stored row or snapshot) as conditions see it; consent as its state's name
    ("granted", "denied", "unknown"), never a truthy string standing for a yes."""
    context = {
        name: getattr(customer, name, None)
        for name in ("first_name", "last_name", "email", "phone", "locale", "time_zone")
    }
    for name in ("email_marketing_consent", "sms_consent", "sms_marketing_consent"):
        state = getattr(customer, f"{name}_state", None)
        if state is None:  # a snapshot: True, False or None (said nothing)
            given = getattr(customer, name, None)
            state = "unknown" if given is None else "granted" if given else "denied"
        context[name] = str(state)
    return context


def schedule(campaign: Campaign, anchor: datetime, zone: ZoneInfo) -> list[tuple[int, datetime]]:
    """Due times of the first message and each reminder, in UTC, inside the send window.

    Reminders count from the first message's due time, so a window shift carries over.
    """
    due = campaign.delay.after(anchor, zone)
    if campaign.send_window is not None:
        due = campaign.send_window.next_open(due, zone)
    steps = [(0, due)]
    if campaign.reminders is not None:
        for step in range(1, campaign.reminders.count + 1):
            due = campaign.reminders.delay.after(due, zone)
            if campaign.send_window is not None:
                due = campaign.send_window.next_open(due, zone)
            steps.append((step, due))
    return steps


def decide(campaign: Campaign, occurrence: Occurrence, facts: Facts) -> Decision:
    """Whether ``campaign`` plans anything for ``occurrence``, and what. Never raises."""
    if facts.order is not None:
        # What each cancelling event leaves on an order, so a late trigger is not planned.
        states = facts.order_states
        for event in campaign.cancel_on:
            if CANCEL_STATES.get(event) in states:
                return Decision(reason=f"{event} already happened")
    if campaign.when is not None:
        try:
            if not campaign.when.matches(facts.context(occurrence.tier, occurrence.review)):
                return Decision(reason=f"condition not met: {campaign.when.source}")
        except ConditionError as exc:
            return Decision(reason=f"condition failed: {exc}")
    channels = [c for c in campaign.channels if facts.customer.get(_ADDRESS[c])]
    if not channels:
        wanted = " or ".join(_ADDRESS[c] for c in campaign.channels)
        return Decision(reason=f"the customer has no {wanted}")
    if campaign.channel_mode == "first":
        channels = channels[:1]
    steps = tuple(
        Step(step, channel, due)
        for step, due in schedule(campaign, occurrence.at, facts.zone)
        for channel in channels
    )
    return Decision(steps=steps)
