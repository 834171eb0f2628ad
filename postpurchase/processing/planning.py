"""Planning touchpoints from campaigns, and cancelling the ones events make moot.

An ``Occurrence`` is something that can start campaigns: a trigger (``order.delivered``,
``tier.changed``, ``customer.lapsed`` ...) at a moment, about an order or a customer.
``decide`` is the pure rule (no database): for one campaign and the facts of the order and
customer, either the steps to send with their due times, or the reason none is planned.
``plan_touchpoints`` applies it to a batch and inserts the touchpoints, ignoring those that
already exist (unique per subject + campaign + step + channel), so planning twice is a no-op.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from postpurchase.campaigns.conditions import ConditionError
from postpurchase.campaigns.config import Campaign, CampaignConfig
from postpurchase.campaigns.timing import zone_or
from postpurchase.catalogue.products import catalogue_entries, with_catalogue
from postpurchase.journey import CANCEL_STATES, order_states
from postpurchase.processing.records import Records
from postpurchase.processing.statements import insert_ignoring_conflicts
from postpurchase.store.models import (
    Channel,
    Customer,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
    OrderItem,
    Touchpoint,
    TouchpointStatus,
)

_ADDRESS = {Channel.EMAIL: "email", Channel.SMS: "phone"}


def order_subject(order_id: int) -> str:
    return f"order:{order_id}"


def tier_subject(customer_id: int, to_tier: str, at: datetime) -> str:
    return f"tier:{customer_id}:{to_tier}:{at.date().isoformat()}"


def lapse_subject(customer_id: int, last_order_id: int) -> str:
    return f"lapse:{customer_id}:{last_order_id}"


@dataclass(frozen=True)
class Occurrence:
    """A trigger at a moment; ``order_id`` is None for customer-level triggers."""

    trigger: str
    at: datetime
    customer_id: int
    order_id: int | None
    subject_key: str
    tier: dict[str, Any] | None = None


@dataclass(frozen=True)
class Step:
    step: int
    channel: Channel
    due_at: datetime


@dataclass(frozen=True)
class Decision:
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

    def context(self, tier: dict[str, Any] | None) -> dict[str, Any]:
        return {"order": self.order, "customer": self.customer, "items": self.items, "tier": tier}


_ITEM_FIELDS = (
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
    context = {name: getattr(item, name, None) for name in _ITEM_FIELDS}
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
        states = order_states(
            cancelled_at=facts.order.get("cancelled_at"),
            financial_status=facts.order.get("financial_status"),
            refunded_amount=facts.order.get("refunded_amount", 0),
            returned_at=facts.order.get("returned_at"),
            reviewed_at=facts.order.get("reviewed_at"),
            status_cancels=False,
        )
        for event in campaign.cancel_on:
            if CANCEL_STATES.get(event) in states:
                return Decision(reason=f"{event} already happened")
    if campaign.when is not None:
        try:
            if not campaign.when.matches(facts.context(occurrence.tier)):
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


@dataclass
class PlanCounts:
    """Touchpoints inserted, and "campaign: reason" counts for those not planned."""

    planned: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def load_facts(
    session: Session,
    occurrences: Iterable[Occurrence],
    shop_zone: ZoneInfo,
    known: Records | None = None,
) -> dict[tuple[int, int | None], Facts]:
    """Facts per (customer id, order id), read with at most three queries for the whole batch.

    Customers, orders and order lines that ``known`` (the batch's upsert) already holds are
    taken from it rather than read again.
    """
    occurrences = list(occurrences)
    known = known or Records()
    customers: dict[int, Any] = dict(known.customers_by_id)
    orders: dict[int, Any] = {o.id: o for o in known.orders.values()}
    items: dict[int, list[dict[str, Any]]] = {
        order_id: [{name: line.get(name) for name in _ITEM_FIELDS} for line in lines]
        for order_id, lines in known.items.items()
    }
    customer_ids = sorted({o.customer_id for o in occurrences} - customers.keys())
    order_ids = sorted({o.order_id for o in occurrences if o.order_id is not None})
    if customer_ids:
        customers.update(
            (c.id, c)
            for c in session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
        )
    missing_orders = [order_id for order_id in order_ids if order_id not in orders]
    if missing_orders:
        orders.update(
            (o.id, o) for o in session.scalars(select(Order).where(Order.id.in_(missing_orders)))
        )
    missing_items = [order_id for order_id in order_ids if order_id not in items]
    if missing_items:
        items.update((order_id, []) for order_id in missing_items)
        for item in session.scalars(
            select(OrderItem).where(OrderItem.order_id.in_(missing_items)).order_by(OrderItem.id)
        ):
            items[item.order_id].append(item_context(item))
    # Loyalty is applied before planning in the same transaction: the award is there to see.
    points: dict[int | None, int] = {}
    if order_ids:
        points.update(
            (order_id, int(total or 0))
            for order_id, total in session.execute(
                select(LoyaltyLedgerEntry.order_id, func.sum(LoyaltyLedgerEntry.points))
                .where(
                    LoyaltyLedgerEntry.order_id.in_(order_ids),
                    LoyaltyLedgerEntry.kind.in_([LedgerKind.AWARD, LedgerKind.REVERSAL]),
                )
                .group_by(LoyaltyLedgerEntry.order_id)
            )
        )
    # The lines' products, from the catalogue, in one query for the whole batch.
    sources = {order_id: orders[order_id].source for order_id in order_ids if order_id in orders}
    entries = catalogue_entries(
        session,
        (
            (sources[order_id], str(line["product_id"]))
            for order_id in order_ids
            if order_id in sources
            for line in items.get(order_id, [])
            if line.get("product_id")
        ),
    )
    for order_id in order_ids:
        if order_id in sources and order_id in items:
            items[order_id] = with_catalogue(items[order_id], sources[order_id], entries)
    facts = {}
    for occurrence in occurrences:
        customer = customers[occurrence.customer_id]
        order = orders.get(occurrence.order_id) if occurrence.order_id is not None else None
        lines = items.get(occurrence.order_id, []) if occurrence.order_id is not None else []
        facts[(occurrence.customer_id, occurrence.order_id)] = Facts(
            order=(
                order_context(order, lines, points_earned=points.get(order.id, 0))
                if order is not None
                else None
            ),
            customer=customer_context(customer),
            items=lines,
            zone=zone_or(customer.time_zone, shop_zone),
        )
    return facts


def plan_touchpoints(
    session: Session,
    occurrences: Sequence[Occurrence],
    config: CampaignConfig,
    *,
    shop_zone: ZoneInfo,
    known: Records | None = None,
) -> PlanCounts:
    """Plan every enabled campaign each occurrence triggers; existing touchpoints are kept.

    ``known`` is the batch's upsert, whose rows need not be read again. Returns how many
    touchpoints were inserted and why others were not planned.
    """
    counts = PlanCounts()
    by_trigger: dict[str, list[Campaign]] = {}
    for campaign in config.enabled():
        by_trigger.setdefault(campaign.trigger, []).append(campaign)
    relevant = [o for o in occurrences if o.trigger in by_trigger]
    if not relevant:
        return counts
    facts = load_facts(session, relevant, shop_zone, known)
    rows: list[dict[str, Any]] = []
    for occurrence in relevant:
        for campaign in by_trigger[occurrence.trigger]:
            decision = decide(
                campaign, occurrence, facts[(occurrence.customer_id, occurrence.order_id)]
            )
            if decision.reason is not None:
                counts.skipped[f"{campaign.id}: {decision.reason}"] += 1
            rows.extend(
                {
                    "subject_key": occurrence.subject_key,
                    "campaign_id": campaign.id,
                    "step": step.step,
                    "channel": step.channel,
                    "customer_id": occurrence.customer_id,
                    "order_id": occurrence.order_id,
                    "due_at": step.due_at,
                    "status": TouchpointStatus.PLANNED,
                }
                for step in decision.steps
            )
    # in unique-key order, like every batch insert that concurrent drainers may share rows of
    rows.sort(key=lambda r: (r["subject_key"], r["campaign_id"], r["step"], r["channel"]))
    counts.planned = insert_ignoring_conflicts(session, Touchpoint, rows)
    return counts


@dataclass(frozen=True)
class Cancellation:
    """An event that may make planned touchpoints moot, about an order and/or a customer."""

    event: str
    order_id: int | None
    customer_id: int | None


def cancel_touchpoints(
    session: Session, cancellations: Sequence[Cancellation], config: CampaignConfig
) -> int:
    """Cancel planned touchpoints of campaigns whose ``cancel_on`` lists the event.

    Order-level campaigns are cancelled for the event's order, customer-level ones (win-back)
    for its customer. Touchpoints already sent, claimed or finished are left alone. Returns
    how many were cancelled.
    """
    cancelled = 0
    for event in sorted({c.event for c in cancellations}):
        hits = [c for c in cancellations if c.event == event]
        for customer_level in (False, True):
            campaign_ids = [
                c.id
                for c in config.campaigns
                if event in c.cancel_on and c.customer_level == customer_level
            ]
            if customer_level:
                scope = Touchpoint.customer_id.in_({h.customer_id for h in hits if h.customer_id})
            else:
                scope = Touchpoint.order_id.in_({h.order_id for h in hits if h.order_id})
            if not campaign_ids:
                continue
            result = session.execute(
                update(Touchpoint)
                .where(
                    Touchpoint.status == TouchpointStatus.PLANNED,
                    Touchpoint.campaign_id.in_(campaign_ids),
                    scope,
                )
                .values(status=TouchpointStatus.CANCELLED, reason=f"cancelled by {event}")
                .execution_options(synchronize_session=False)
            )
            cancelled += int(result.rowcount)  # type: ignore[attr-defined]
    return cancelled
