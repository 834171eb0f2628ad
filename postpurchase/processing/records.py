"""Upserting customers, orders, items and refunds from a batch of canonical events.

Rules, so that events may arrive late, twice, or out of order:

- A snapshot's version is its ``updated_at`` (else the event's ``occurred_at``). A snapshot
  older than what is stored is stale: its fields are ignored. Among fresh ones, fields the
  payload did not carry (absent or null) never erase a known value.
- Journey timestamps come from event types (``order.paid`` sets ``paid_at``, ...) whatever the
  snapshot's freshness, and the earliest occurrence wins, so the order of arrival cannot
  change them.
- A refund counts once per platform refund id (``order_refunds``); ``refunded_amount`` is
  their sum.

Work is set-based per batch: missing rows are inserted bare (conflicts ignored, so concurrent
workers cannot collide), then every row the batch touches is loaded once (locked on
PostgreSQL), merged in memory and flushed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from postpurchase.events import (
    NO_CURRENCY,
    CanonicalEvent,
    CustomerSnapshot,
    EventType,
    OrderSnapshot,
)
from postpurchase.processing.statements import insert_ignoring_conflicts
from postpurchase.store.models import Customer, Order, OrderItem, OrderRefund

Key = tuple[str, str]  # (source, platform id)

# Which journey timestamp an event type sets on its order.
EVENT_TIMESTAMPS = {
    EventType.ORDER_PLACED: "placed_at",
    EventType.ORDER_PAID: "paid_at",
    EventType.ORDER_FULFILLED: "fulfilled_at",
    EventType.ORDER_DELIVERED: "delivered_at",
    EventType.ORDER_CANCELLED: "cancelled_at",
    EventType.RETURN_REQUESTED: "returned_at",
    EventType.REVIEW_SUBMITTED: "reviewed_at",
}
_CUSTOMER_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "time_zone",
    "email_marketing_consent",
    "sms_consent",
    "sms_marketing_consent",
)
_ORDER_FIELDS = (
    "name",
    "currency",
    "subtotal",
    "total",
    "total_tax",
    "total_discounts",
    "total_shipping",
    "financial_status",
    "fulfillment_status",
    "tracking_url",
    "placed_at",
    "cancelled_at",
)


@dataclass(frozen=True)
class SourcedEvent:
    """A canonical event with the inbox row it came from."""

    inbox_id: int
    source: str
    event: CanonicalEvent

    @property
    def order_key(self) -> Key | None:
        order = self.event.order
        return (self.source, order.external_id) if order else None

    @property
    def customer_key(self) -> Key | None:
        snapshot = self.event.customer or (self.event.order.customer if self.event.order else None)
        return (self.source, snapshot.external_id) if snapshot else None


@dataclass
class Records:
    """The rows a batch touched, by platform key, after the upsert."""

    customers: dict[Key, Customer] = field(default_factory=dict)
    orders: dict[Key, Order] = field(default_factory=dict)

    def order_for(self, item: SourcedEvent) -> Order | None:
        return self.orders.get(item.order_key) if item.order_key else None

    def customer_for(self, item: SourcedEvent) -> Customer | None:
        key = item.customer_key
        if key is not None:
            return self.customers.get(key)
        order = self.order_for(item)
        return order.customer if order is not None else None


def _version(snapshot: CustomerSnapshot | OrderSnapshot, occurred_at: datetime) -> datetime:
    return snapshot.updated_at or occurred_at


def _apply_fields(row: Any, snapshot: Any, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(snapshot, name)
        if name == "currency" and value == NO_CURRENCY:
            continue  # a partial order says nothing about its currency
        if name in snapshot.model_fields_set and value is not None:
            setattr(row, name, value)


def _fresh(row: Customer | Order, version: datetime) -> bool:
    """Whether a snapshot of ``version`` may overwrite ``row`` (and then bump its version)."""
    if row.source_updated_at is not None and version < row.source_updated_at:
        return False
    row.source_updated_at = version
    return True


def _load(session: Session, model: Any, keys: set[Key]) -> dict[Key, Any]:
    if not keys:
        return {}
    query = select(model).where(tuple_(model.source, model.external_id).in_(sorted(keys)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # concurrent batches merge one after the other
    return {(row.source, row.external_id): row for row in session.scalars(query)}


def _order_version(item: SourcedEvent) -> tuple[datetime, int]:
    assert item.event.order is not None
    return _version(item.event.order, item.event.occurred_at), item.inbox_id


def _customer_snapshots(
    items: Sequence[SourcedEvent],
) -> list[tuple[Key, CustomerSnapshot, datetime]]:
    found = []
    for item in items:
        order = item.event.order
        for snapshot in (item.event.customer, order.customer if order else None):
            if snapshot is not None:
                key = (item.source, snapshot.external_id)
                found.append((key, snapshot, _version(snapshot, item.event.occurred_at)))
    return found


def upsert_records(session: Session, items: Sequence[SourcedEvent]) -> Records:
    """Insert or update the customers, orders, items and refunds ``items`` describe."""
    records = Records()
    customer_snaps = _customer_snapshots(items)
    insert_ignoring_conflicts(
        session,
        Customer,
        [
            {"source": k[0], "external_id": k[1]}
            for k in dict.fromkeys(k for k, _, _ in customer_snaps)
        ],
    )
    records.customers = _load(session, Customer, {k for k, _, _ in customer_snaps})
    for key, snapshot, version in sorted(customer_snaps, key=lambda s: s[2]):
        row = records.customers[key]
        if _fresh(row, version):
            _apply_fields(row, snapshot, _CUSTOMER_FIELDS)

    with_orders = [i for i in items if i.event.order is not None]
    bare_orders = {
        i.order_key: {
            "source": i.source,
            "external_id": i.event.order.external_id,
            "currency": i.event.order.currency,
        }
        for i in with_orders
        if i.event.order is not None and i.order_key is not None
    }
    insert_ignoring_conflicts(session, Order, list(bare_orders.values()))
    records.orders = _load(session, Order, set(bare_orders))
    replaced_lines: dict[int, OrderSnapshot] = {}
    for item in sorted(with_orders, key=_order_version):
        _merge_order(records, item, replaced_lines)
    session.flush()
    _replace_items(session, replaced_lines)
    _record_refunds(session, records, items)
    return records


def _merge_order(
    records: Records, item: SourcedEvent, replaced_lines: dict[int, OrderSnapshot]
) -> None:
    event = item.event
    snapshot = event.order
    assert snapshot is not None and item.order_key is not None
    row = records.orders[item.order_key]
    if _fresh(row, _version(snapshot, event.occurred_at)):
        _apply_fields(row, snapshot, _ORDER_FIELDS)
        customer_key = item.customer_key
        if customer_key is not None:
            row.customer_id = records.customers[customer_key].id
        if snapshot.lines:
            replaced_lines[row.id] = snapshot
    if event.shipment is not None and event.shipment.tracking_url:
        row.tracking_url = event.shipment.tracking_url
    column = EVENT_TIMESTAMPS.get(event.type)
    if column is not None:
        moment = event.occurred_at
        if event.type is EventType.ORDER_PLACED and snapshot.placed_at is not None:
            moment = snapshot.placed_at
        current = getattr(row, column)
        if current is None or moment < current:
            setattr(row, column, moment)


def _replace_items(session: Session, replaced: dict[int, OrderSnapshot]) -> None:
    """The newest snapshot's lines are the order's items: edits and removals included."""
    if not replaced:
        return
    session.execute(
        delete(OrderItem)
        .where(OrderItem.order_id.in_(list(replaced)))
        .execution_options(synchronize_session=False)
    )
    rows = [
        {
            "order_id": order_id,
            **line.model_dump(exclude={"external_id"}),
            "external_id": line.external_id,
        }
        for order_id, snapshot in replaced.items()
        for line in {line.external_id: line for line in snapshot.lines}.values()
    ]
    insert_ignoring_conflicts(session, OrderItem, rows)


def _record_refunds(session: Session, records: Records, items: Sequence[SourcedEvent]) -> None:
    refunds: list[dict[str, Any]] = [
        {
            "order_id": records.orders[i.order_key].id,
            "external_id": i.event.refund.external_id,
            "amount": i.event.refund.amount,
            "currency": i.event.refund.currency,
            "refunded_at": i.event.occurred_at,
        }
        for i in items
        if i.event.refund is not None and i.order_key is not None
    ]
    if not insert_ignoring_conflicts(session, OrderRefund, refunds):
        return
    order_ids: list[int] = sorted({r["order_id"] for r in refunds})
    totals = (
        select(func.coalesce(func.sum(OrderRefund.amount), 0))
        .where(OrderRefund.order_id == Order.id)
        .scalar_subquery()
    )
    session.execute(
        update(Order)
        .where(Order.id.in_(order_ids))
        .values(refunded_amount=totals)
        .execution_options(synchronize_session=False)
    )
    for order in records.orders.values():
        if order.id in order_ids:
            session.refresh(order, ["refunded_amount"])
