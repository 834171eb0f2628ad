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
from postpurchase.campaigns.timing import due_times
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


class CampaignRule:
    """``decide`` for one campaign, with what depends on the campaign alone worked out once.

    Planning decides each campaign for every event of a batch that triggers it: the reasons,
    the address each channel needs and the delays of the steps are the same every time.
    """

    __slots__ = ("_cancels", "_channels", "_delays", "_first", "_no_address", "_when", "_window")

    def __init__(self, campaign: Campaign) -> None:
        # cancel_on in its order (the first state found names the reason); an event that
        # leaves no state on the order (``order.placed``) has nothing to find
        self._cancels = tuple(
            (CANCEL_STATES[event], f"{event} already happened")
            for event in campaign.cancel_on
            if event in CANCEL_STATES
        )
        self._when = campaign.when
        self._channels = tuple((c, _ADDRESS[c]) for c in campaign.channels)
        wanted = " or ".join(address for _, address in self._channels)
        self._no_address = f"the customer has no {wanted}"
        self._first = campaign.channel_mode == "first"
        # The first message's delay, then each reminder's, counted from the step before it.
        reminders = campaign.reminders
        self._delays = (
            campaign.delay,
            *((reminders.delay,) * reminders.count if reminders else ()),
        )
        self._window = campaign.send_window

    def decide(self, occurrence: Occurrence, facts: Facts) -> Decision:
        """See ``decide``."""
        reason, channels, times = self.schedule(occurrence, facts)
        if reason is not None:
            return Decision(reason=reason)
        steps = [Step(step, c, due) for step, due in enumerate(times) for c in channels]
        return Decision(steps=tuple(steps))

    def schedule(
        self, occurrence: Occurrence, facts: Facts
    ) -> tuple[str | None, Sequence[Channel], Sequence[datetime]]:
        """``decide``'s answer in plain values: the reason nothing is planned, or None with
        the channels and each step's due time (the step numbered by its place, on each of
        the channels). Planning makes its rows from these: a Decision of Steps for every
        campaign of every event cost it more than the rows did."""
        if self._cancels and facts.order is not None:
            # What each cancelling event leaves on an order, so a late trigger is not planned.
            states = facts.order_states
            if states:
                for state, cancelled in self._cancels:
                    if state in states:
                        return cancelled, (), ()
        when = self._when
        if when is not None:
            try:
                if not when.matches(facts.context(occurrence.tier, occurrence.review)):
                    return f"condition not met: {when.source}", (), ()
            except ConditionError as exc:
                return f"condition failed: {exc}", (), ()
        customer = facts.customer
        channels = [c for c, address in self._channels if customer.get(address)]
        if not channels:
            return self._no_address, (), ()
        if self._first:
            channels = channels[:1]
        # Reminders count from the first message's due time, so a window shift carries over.
        return None, channels, due_times(occurrence.at, self._delays, self._window, facts.zone)


def decide(campaign: Campaign, occurrence: Occurrence, facts: Facts) -> Decision:
    """Whether ``campaign`` plans anything for ``occurrence``, and what. Never raises.

    The steps' due times are in UTC, inside the send window; reminders count from the first
    message's due time. Deciding one campaign for many occurrences, ``CampaignRule`` is made
    once for them all.
    """
    return CampaignRule(campaign).decide(occurrence, facts)
