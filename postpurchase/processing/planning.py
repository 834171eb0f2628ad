"""Planning touchpoints from campaigns, and cancelling the ones events make moot.

An ``Occurrence`` (``campaigns.decisions``) is something that can start campaigns: a trigger
(``order.delivered``, ``tier.changed``, ``customer.lapsed`` ...) at a moment, about an order
or a customer. ``decide`` there is the pure rule; ``load_facts`` reads what it looks at for a
batch, and ``plan_touchpoints`` applies it and inserts the touchpoints, ignoring those that
already exist (unique per subject + campaign + step + channel), so planning twice is a no-op.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, or_, select, text, update
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import Campaign, CampaignConfig
from postpurchase.campaigns.decisions import (
    ITEM_FIELDS,
    CampaignRule,
    Facts,
    Occurrence,
    customer_context,
    item_context,
    order_context,
)
from postpurchase.campaigns.timing import zone_or
from postpurchase.catalogue.products import catalogue_entries, with_catalogue
from postpurchase.outcomes.assignment import stamp, variant_campaign, variant_of
from postpurchase.processing.batch import Records
from postpurchase.store.driver_statements import rows_changed
from postpurchase.store.membership import (
    among,
    array_literal,
    each_among,
    each_among_parameter,
    rows_among,
)
from postpurchase.store.models import (
    TOUCHPOINT_PLANNED,
    Customer,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
    OrderItem,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.store.statements import insert_ignoring_conflicts


def order_subject(order_id: int) -> str:
    return f"order:{order_id}"


def tier_subject(customer_id: int, to_tier: str, at: datetime) -> str:
    return f"tier:{customer_id}:{to_tier}:{at.date().isoformat()}"


def lapse_subject(customer_id: int, last_order_id: int) -> str:
    return f"lapse:{customer_id}:{last_order_id}"


@dataclass
class PlanCounts:
    """Touchpoints inserted, and "campaign: reason" counts for those not planned."""

    planned: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


_LEDGER = cast(Table, LoyaltyLedgerEntry.__table__).c  # plain rows: no ORM execution
_EARNED = (
    select(_LEDGER.order_id, func.sum(_LEDGER.points))
    .where(or_(_LEDGER.kind == LedgerKind.AWARD, _LEDGER.kind == LedgerKind.REVERSAL))
    .group_by(_LEDGER.order_id)
)
# Built once and run by psycopg (``driver_statements``) on PostgreSQL: it runs for every batch.
_PG_EARNED = each_among_parameter(_EARNED, _LEDGER.order_id, "order_ids")


def _points_earned(session: Session, order_ids: list[int]) -> dict[int | None, int]:
    """Points each order earned so far (awards less reversals), for conditions.

    Loyalty is applied before planning in the same transaction: the award is there to see.
    """
    if not order_ids:
        return {}
    rows = rows_among(
        session,
        _EARNED,
        lambda statement: each_among(session, statement, _LEDGER.order_id, order_ids),
        _PG_EARNED,
        {"order_ids": order_ids},
    )
    return {order_id: int(total or 0) for order_id, total in rows}


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
        order_id: [{name: line.get(name) for name in ITEM_FIELDS} for line in lines]
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
            select(OrderItem)
            .where(among(session, OrderItem.order_id, missing_items))
            .order_by(OrderItem.id)
        ):
            items[item.order_id].append(item_context(item))
    points = _points_earned(session, order_ids)
    # The lines' products, from the catalogue, in one query for the whole batch.
    sources = {
        order_id: (orders[order_id].source, orders[order_id].shop)
        for order_id in order_ids
        if order_id in orders
    }
    entries = catalogue_entries(
        session,
        (
            (*sources[order_id], str(line["product_id"]))
            for order_id in order_ids
            if order_id in sources
            for line in items.get(order_id, [])
            if line.get("product_id")
        ),
    )
    for order_id in order_ids:
        if order_id in sources and order_id in items:
            items[order_id] = with_catalogue(items[order_id], *sources[order_id], entries)
    facts: dict[tuple[int, int | None], Facts] = {}
    for occurrence in occurrences:
        if (occurrence.customer_id, occurrence.order_id) in facts:
            continue  # another of the batch's events about the same order and customer
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
            shop=customer.shop,
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

    Each customer's shop has its campaigns as they apply to it (``CampaignConfig.for_shop``)
    and its time zone for customers without one (``shop_zone`` for shops without their own).
    ``known`` is the batch's upsert, whose rows need not be read again. Returns how many
    touchpoints were inserted and why others were not planned.
    """
    counts = PlanCounts()
    by_shop = {shop: _by_trigger(config.for_shop(shop)) for shop in ("", *config.shops)}
    # a shop's override may enable a campaign the other shops do not run
    triggers = {trigger for by_trigger in by_shop.values() for trigger in by_trigger}
    relevant = [o for o in occurrences if o.trigger in triggers]
    if not relevant:
        return counts
    # The facts in their shop's zone (``in_shop_zone``), each once for all the occurrences
    # it is about, each shop's zone looked up once.
    zones: dict[str, ZoneInfo] = {}
    facts: dict[tuple[int, int | None], Facts] = {}
    for key, found in load_facts(session, relevant, shop_zone, known).items():
        if found.shop not in zones:
            zones[found.shop] = config.shop_zone(found.shop, shop_zone)
        facts[key] = _in_zone(found, zones[found.shop], shop_zone)
    salt = config.outcomes.salt
    # Each campaign's rows (by the campaign object: a shop's override is another one), stamped
    # with their arm and variant once all are decided, in one call per campaign.
    planned: dict[int, tuple[Campaign, list[dict[str, Any]]]] = {}
    for occurrence in relevant:
        known_facts = facts[(occurrence.customer_id, occurrence.order_id)]
        by_trigger = by_shop.get(known_facts.shop.strip().lower(), by_shop[""])
        for campaign, rule, variant_rules in by_trigger.get(occurrence.trigger, ()):
            # a variant may have its own delay; arm and variant are stamped on the rows below
            if variant_rules:
                variant = variant_of(campaign, occurrence.customer_id, salt)
                rule = variant_rules.get(variant, rule)
            reason, channels, times = rule.schedule(occurrence, known_facts)
            if reason is not None:
                counts.skipped[f"{campaign.id}: {reason}"] += 1
                continue
            of_campaign = planned.get(id(campaign))
            if of_campaign is None:
                of_campaign = planned[id(campaign)] = (campaign, [])
            # the rows of ``rule.decide``'s steps, in their order
            for step, due_at in enumerate(times):
                for channel in channels:
                    of_campaign[1].append(
                        {
                            "subject_key": occurrence.subject_key,
                            "campaign_id": campaign.id,
                            "step": step,
                            "channel": channel,
                            "customer_id": occurrence.customer_id,
                            "shop": known_facts.shop,
                            "order_id": occurrence.order_id,
                            "due_at": due_at,
                            "status": TouchpointStatus.PLANNED,
                        }
                    )
    rows: list[dict[str, Any]] = []
    for campaign, campaign_rows in planned.values():
        stamp(campaign_rows, campaign, salt)
        rows += campaign_rows
    # in unique-key order, like every batch insert that concurrent drainers may share rows of
    rows.sort(key=lambda r: (r["subject_key"], r["campaign_id"], r["step"], r["channel"]))
    counts.planned = insert_ignoring_conflicts(session, Touchpoint, rows)
    return counts


class _Planned(NamedTuple):
    """A campaign as planning applies it: its rule, and the rules of its variants that have
    a delay of their own (by variant id), each made once for the batch."""

    campaign: Campaign
    rule: CampaignRule
    variant_rules: dict[str | None, CampaignRule]


def _by_trigger(config: CampaignConfig) -> dict[str, list[_Planned]]:
    by_trigger: dict[str, list[_Planned]] = {}
    for campaign in config.enabled():
        variant_rules: dict[str | None, CampaignRule] = {
            v.id: CampaignRule(variant_campaign(campaign, v.id))
            for v in campaign.variants
            if v.delay is not None
        }
        planned = _Planned(campaign, CampaignRule(campaign), variant_rules)
        by_trigger.setdefault(campaign.trigger, []).append(planned)
    return by_trigger


def in_shop_zone(facts: Facts, config: CampaignConfig, default: ZoneInfo) -> Facts:
    """``facts`` in the zone of their shop when the customer has none of their own."""
    return _in_zone(facts, config.shop_zone(facts.shop, default), default)


def _in_zone(facts: Facts, shop_zone: ZoneInfo, default: ZoneInfo) -> Facts:
    """``facts`` (in ``default`` when the customer has no zone) in ``shop_zone`` instead."""
    if shop_zone == default:
        return facts
    return replace(facts, zone=zone_or(facts.customer.get("time_zone"), shop_zone))


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
            column = "customer_id" if customer_level else "order_id"
            keys = sorted({key for h in hits if (key := getattr(h, column))})
            if campaign_ids and keys:
                cancelled += _cancel(session, column, keys, campaign_ids, f"cancelled by {event}")
    return cancelled


# PostgreSQL: each key's planned touchpoints are looked up on their own (a lateral subquery,
# kept apart by OFFSET 0 so the planner cannot turn it into one join), through the partial
# index of planned rows on that column, and locked; then those rows are updated by id. As one
# statement with "column IN (keys)", a table without statistics made PostgreSQL walk every
# planned touchpoint instead.
_CANCEL = """
UPDATE touchpoints SET status = 'cancelled', reason = :reason, updated_at = now()
WHERE id = ANY(ARRAY(
    SELECT t.id FROM unnest(CAST(:keys AS BIGINT[])) AS k(id)
    CROSS JOIN LATERAL (
        SELECT id FROM touchpoints
        WHERE {column} = k.id AND {planned} AND campaign_id = ANY(CAST(:campaigns AS TEXT[]))
        OFFSET 0 FOR UPDATE
    ) AS t
))
"""
# Built once per column and run by psycopg (``driver_statements``): they run for every batch.
PG_CANCEL = {
    column: text(_CANCEL.format(column=column, planned=TOUCHPOINT_PLANNED))
    for column in ("order_id", "customer_id")
}


def _cancel(
    session: Session, column: str, keys: list[int], campaign_ids: list[str], reason: str
) -> int:
    """Cancel the planned touchpoints of ``campaign_ids`` whose ``column`` is among ``keys``."""
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "reason": reason,
            "keys": array_literal(keys),
            "campaigns": array_literal(campaign_ids),
        }
        return rows_changed(session.connection(), PG_CANCEL[column], params)
    result = session.execute(
        update(Touchpoint)
        .where(
            Touchpoint.status == TouchpointStatus.PLANNED,
            Touchpoint.campaign_id.in_(campaign_ids),
            getattr(Touchpoint, column).in_(keys),
        )
        .values(status=TouchpointStatus.CANCELLED, reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
