"""Upserting customers, orders, items and refunds from a batch of canonical events.

Rules, so that events may arrive late, twice, or out of order:

- A snapshot's version is its ``updated_at`` (else the event's ``occurred_at``). A snapshot
  older than what is stored is stale: its fields are ignored. Among fresh ones, fields the
  payload did not carry (absent or null) never erase a known value.
- Journey timestamps come from event types (``order.paid`` sets ``paid_at``, ...) whatever the
  snapshot's freshness, and the earliest occurrence wins, so the order of arrival cannot
  change them. An order is also paid when any event shows it in a paid status (a WooCommerce
  order first seen ``completed``) or names its payment time: a paid order counts as paid
  whatever path it took, and ``newly_paid`` tells which event made it so.
- A refund counts once per platform refund id (``order_refunds``); ``refunded_amount`` is
  their sum. Refunds come from refund events (``event.refund``) and from the refunds an order
  lists (``order.refunds``, WooCommerce's way), whatever the snapshot's freshness: the first
  event of the batch (oldest first) that names a refund the store lacks records it, and the
  batch reports it as new, so that it is acted on once.
- An order of an erased customer (``ERASED_PREFIX``) that an event names a customer for goes
  to that customer's (new) profile, however stale the snapshot: the erased profile never
  gets anything new.

Work is set-based per batch (``postpurchase.processing.record_rows``): the stored rows the batch
touches are read once as plain values (locked on PostgreSQL), the others start blank, all are
merged in memory; new rows are then inserted once with their merged values and stored rows that
changed are written back with one UPDATE statement per table. A new row another worker
inserted meanwhile sends the batch's upsert back to its savepoint, to merge again from what is
stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, TypeVar

from msgspec import UNSET
from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.consent import record_changes
from postpurchase.events import NO_CURRENCY, EventType
from postpurchase.exceptions import ConcurrentChange
from postpurchase.journey import EVENT_TIMESTAMPS, in_paid_status
from postpurchase.processing.batch import CustomerRecord, Key, OrderRecord, Records, SourcedEvent
from postpurchase.processing.consents import consent_only, merge_consent
from postpurchase.processing.order_items import replace_items
from postpurchase.processing.record_rows import RowsTaken, blanks, load, values, write
from postpurchase.store.membership import among
from postpurchase.store.models import ERASED_PREFIX, Customer, Order, OrderRefund
from postpurchase.store.statements import insert_ignoring_conflicts
from postpurchase.stored_events import StoredCustomer, StoredOrder, StoredRefund

_R = TypeVar("_R", "CustomerRecord", "OrderRecord")

# The snapshot fields that set the record's field of the same name, and their values as a tuple.
_CUSTOMER_FIELDS = ("email", "phone", "first_name", "last_name", "locale", "time_zone")
_CUSTOMER_VALUES = attrgetter(*_CUSTOMER_FIELDS)
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
_ORDER_VALUES = attrgetter(*_ORDER_FIELDS)


def _named_refunds(item: SourcedEvent) -> list[StoredRefund]:
    """The refunds an event names: its own (a refund event), then those its order lists;
    the first of each refund id."""
    own, order = item.event.refund, item.order
    if own is None and (order is None or not order.refunds):
        return []  # most events
    listed = [own] if own is not None else []
    listed += order.refunds if order is not None else []
    named: dict[str, StoredRefund] = {}
    for refund in listed:
        named.setdefault(refund.external_id, refund)
    return list(named.values())


def _version(snapshot: StoredCustomer | StoredOrder, occurred_at: datetime) -> datetime:
    return snapshot.updated_at or occurred_at


def _apply_fields(row: Any, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
    # only the fields the payload carried (``postpurchase.stored_events``: neither None nor
    # UNSET); each sets a column of its own
    for name, value in zip(names, values, strict=True):
        if value is None or value is UNSET or (name == "currency" and value == NO_CURRENCY):
            continue  # a partial order says nothing about its currency
        setattr(row, name, value)


def _fresh(row: CustomerRecord | OrderRecord, version: datetime) -> bool:
    """Whether a snapshot of ``version`` may overwrite ``row`` (and then bump its version)."""
    if row.source_updated_at is not None and version < row.source_updated_at:
        return False
    row.source_updated_at = version
    return True


def _order_version(item: SourcedEvent) -> tuple[datetime, int]:
    assert item.order is not None
    return _version(item.order, item.occurred_at), item.inbox_id


def _customer_snapshots(
    items: Sequence[SourcedEvent],
) -> list[tuple[Key, StoredCustomer, datetime]]:
    found = []
    for item in items:
        order = item.order
        for snapshot in (item.event.customer, order.customer if order else None):
            if snapshot is not None:
                key = (item.source, item.shop, snapshot.external_id)
                found.append((key, snapshot, _version(snapshot, item.occurred_at)))
    return found


_ATTEMPTS = 3


def upsert_records(session: Session, items: Sequence[SourcedEvent]) -> Records:
    """Insert or update the customers, orders, items and refunds ``items`` describe.

    In a savepoint: when another worker inserted one of the batch's new customers or orders
    meanwhile, the work is undone and done again from a new read, which finds that row.
    """
    for _ in range(_ATTEMPTS):
        try:
            with session.begin_nested():
                return _upsert(session, items)
        except RowsTaken:
            continue
    raise ConcurrentChange(
        f"new customers or orders of this batch were inserted by other workers {_ATTEMPTS} "
        "times over"
    )


def _read(
    session: Session, record: type[_R], model: Any, keys: Mapping[Key, Mapping[str, Any]]
) -> tuple[dict[Key, _R], dict[Key, tuple[Any, ...]]]:
    """The rows of ``keys``: those stored (locked), and blank ones for the others (with the
    values ``keys`` gives them); and the stored rows' values as read, for ``write``."""
    stored = load(session, record, model, set(keys))
    read = {key: values(row) for key, row in stored.items()}
    missing = {key: given for key, given in keys.items() if key not in stored}
    return {**stored, **blanks(session, record, model, missing)}, read


def _upsert(session: Session, items: Sequence[SourcedEvent]) -> Records:
    records = Records()
    customer_snaps = _customer_snapshots(items)
    records.customers, read = _read(
        session, CustomerRecord, Customer, {k: {} for k, _, _ in customer_snaps}
    )
    for key, snapshot, version in sorted(customer_snaps, key=lambda s: s[2]):
        row = records.customers[key]
        # A consent topic's snapshot has no record version: it must not move the record's.
        if not consent_only(snapshot) and _fresh(row, version):
            _apply_fields(row, _CUSTOMER_FIELDS, _CUSTOMER_VALUES(snapshot))
    consent_changes = merge_consent(records.customers, items)
    write(session, Customer, read, records.customers)
    record_changes(session, consent_changes)  # once the new customers they name exist

    with_orders = [i for i in items if i.order is not None]
    currencies = {
        i.order_key: {"currency": i.order.currency}
        for i in with_orders
        if i.order is not None and i.order_key is not None
    }
    records.orders, read = _read(session, OrderRecord, Order, currencies)
    stored_ids = {records.orders[key].id for key in read}
    oldest_first = sorted(with_orders, key=_order_version)
    erased = _erased(session, records, {records.orders[key].customer_id for key in read})
    replaced_lines = _merge_orders(records, oldest_first, erased)
    refunds = _record_refunds(session, records, oldest_first, stored_ids)
    write(session, Order, read, records.orders)
    _insert_refunds(session, refunds)
    records.customers_by_id = {c.id: c for c in records.customers.values()}
    _load_order_customers(session, records)
    records.items = replace_items(session, replaced_lines, stored_ids)
    return records


def _load_order_customers(session: Session, records: Records) -> None:
    """Add the customers of the batch's orders that its events did not name."""
    missing = {
        o.customer_id
        for o in records.orders.values()
        if o.customer_id is not None and o.customer_id not in records.customers_by_id
    }
    if not missing:
        return
    table = Customer.__table__
    query = select(*(table.c[f.name] for f in fields(CustomerRecord))).where(
        table.c.id.in_(sorted(missing))
    )
    for row in session.execute(query):
        records.customers_by_id[row.id] = CustomerRecord(**row._mapping)


def _erased(session: Session, records: Records, customer_ids: set[int | None]) -> set[int]:
    """Which of ``customer_ids`` are erased customers (postpurchase.privacy).

    Told by their platform id (``ERASED_PREFIX``): for the batch's own customers, as read;
    the others (an order's customer that its events do not name, rare) are read here. A query
    per batch for all of them cost a drainer more than the merge it guards.
    """
    known = {c.id: c.external_id for c in records.customers.values()}
    erased = {i for i in customer_ids if i in known and known[i].startswith(ERASED_PREFIX)}
    wanted = sorted(i for i in customer_ids if i is not None and i not in known)
    if not wanted:
        return erased
    return erased | set(
        session.scalars(
            select(Customer.id).where(
                Customer.id.in_(wanted), Customer.external_id.startswith(ERASED_PREFIX)
            )
        )
    )


def _merge_orders(
    records: Records, items: Sequence[SourcedEvent], erased: set[int]
) -> dict[int, StoredOrder]:
    """Merge each event of ``items`` (oldest first) into its order's record; returns, by order
    id, the newest fresh snapshot that lists the order's lines.

    One loop over the batch: a call per event to merge each cost a drainer more than the
    merging itself.
    """
    orders, customers, newly_paid = records.orders, records.customers, records.newly_paid
    replaced_lines: dict[int, StoredOrder] = {}
    for item in items:
        event = item.event
        snapshot = item.order
        assert snapshot is not None and item.order_key is not None
        row = orders[item.order_key]
        was_paid = row.paid_at is not None
        customer_key = item.customer_key
        occurred_at = item.occurred_at
        if _fresh(row, _version(snapshot, occurred_at)):
            _apply_fields(row, _ORDER_FIELDS, _ORDER_VALUES(snapshot))
            if customer_key is not None:
                row.customer_id = customers[customer_key].id
            if snapshot.lines:
                replaced_lines[row.id] = snapshot
        elif customer_key is not None and row.customer_id in erased:
            row.customer_id = customers[customer_key].id
        shipment = event.shipment
        if shipment is not None and shipment.tracking_url:
            row.tracking_url = shipment.tracking_url
        kind = item.kind
        column = EVENT_TIMESTAMPS.get(kind)
        if column is not None:
            moment = occurred_at
            if kind is EventType.ORDER_PLACED and snapshot.placed_at is not None:
                moment = snapshot.placed_at
            current = getattr(row, column)
            if current is None or moment < current:
                setattr(row, column, moment)
            if kind is EventType.ORDER_DELIVERED and (
                row.delivery_confirmed_at is None or moment < row.delivery_confirmed_at
            ):
                # a carrier's report, unlike the fallback's assumed delivered_at
                row.delivery_confirmed_at = moment
        # Paid is a fact, like a refund: even a stale snapshot in a paid status proves payment.
        paid = snapshot.paid_at
        if paid is None and in_paid_status(snapshot.financial_status):
            paid = occurred_at
        if paid is not None and (row.paid_at is None or paid < row.paid_at):
            row.paid_at = paid
        if not was_paid and row.paid_at is not None:
            newly_paid.add(item.inbox_id)
    return replaced_lines


def _record_refunds(
    session: Session, records: Records, items: Sequence[SourcedEvent], stored_ids: set[int]
) -> list[dict[str, Any]]:
    """The refunds ``items`` (oldest first) name that the store lacks, as rows for
    ``_insert_refunds``; set each order's ``refunded_amount`` to the sum of its refunds, and
    fill ``records.refunds`` and ``records.new_refunds``.

    The batch's orders are locked (PostgreSQL) or the database is (SQLite), so the refunds
    read here are all there are; orders not among ``stored_ids`` are new, without any. A new
    refund is dated by the event that first names it.
    """
    named = [
        (item, records.orders[item.order_key], refund)
        for item in items
        if item.order_key is not None
        for refund in _named_refunds(item)
    ]
    order_ids = {order.id for _, order, _ in named}
    order_ids.update(o.id for o in records.orders.values() if o.refunded_amount > 0)
    if not order_ids:
        return []
    wanted = sorted(order_ids & stored_ids)
    stored = (
        session.execute(
            select(
                OrderRefund.order_id,
                OrderRefund.external_id,
                OrderRefund.amount,
                OrderRefund.currency,
            )
            .where(among(session, OrderRefund.order_id, wanted))
            .order_by(OrderRefund.id)
        ).all()
        if wanted
        else []
    )
    totals: dict[int, Decimal] = dict.fromkeys(order_ids, Decimal(0))
    known: set[tuple[int, str]] = set()

    def add(order_id: int, refund: StoredRefund) -> None:
        totals[order_id] += refund.amount
        known.add((order_id, refund.external_id))
        records.refunds.setdefault(order_id, []).append((refund, totals[order_id]))

    for order_id, external_id, amount, currency in stored:
        add(order_id, StoredRefund(external_id=external_id, amount=amount, currency=currency))
    rows: list[dict[str, Any]] = []
    for item, order, refund in named:
        if (order.id, refund.external_id) in known:
            continue
        add(order.id, refund)
        records.new_refunds.setdefault(item.inbox_id, []).append(refund)
        rows.append(
            {
                "order_id": order.id,
                "external_id": refund.external_id,
                "amount": refund.amount,
                "currency": refund.currency,
                "refunded_at": item.occurred_at,
            }
        )
    for order in records.orders.values():
        if order.id in totals:
            order.refunded_amount = totals[order.id]
    return rows


def _insert_refunds(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the refunds ``_record_refunds`` found new, once their orders are written."""
    written = insert_ignoring_conflicts(session, OrderRefund, rows)
    if written < len(rows):
        raise ConcurrentChange(
            f"{len(rows) - written} refund(s) of this batch were recorded meanwhile by another "
            "worker"
        )
