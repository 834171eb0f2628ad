"""The rows a dispatch chunk reads: its touchpoints, their customers, orders and order lines,
as plain read-only records of the columns dispatch uses, and the customers' recent sends.

Loaded as ORM objects they cost a worker about a tenth of its CPU per message: each object
built with its identity-map entry and instrumented attributes, and every attribute read
back through them while the chunk is gated and its contexts built. Nothing writes through
these rows (outcomes are written by id, see ``sending``), so plain records do.

On PostgreSQL the statements are built once and run by psycopg (``driver_statements``), their
enum columns typed as the ORM types them (``orm_typed``; times come back in UTC: the session's
zone, see ``make_engine``); SQLite reads them through SQLAlchemy, which types every value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from postpurchase.dispatch.outcomes import HELD
from postpurchase.store.claims import status_among
from postpurchase.store.driver_statements import fetch_all, orm_typed
from postpurchase.store.membership import among_parameter, array_literal
from postpurchase.store.models import (
    Channel,
    ConsentState,
    Customer,
    Order,
    OrderItem,
    Touchpoint,
    TouchpointStatus,
)


class TouchpointRow(NamedTuple):
    id: int
    campaign_id: str
    subject_key: str
    channel: Channel
    customer_id: int
    order_id: int | None
    shop: str
    due_at: datetime
    status: TouchpointStatus
    attempts: int
    variant: str | None
    lease_until: datetime | None  # as its claim, a renewal or its mark left it


class CustomerRow(NamedTuple):
    id: int
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    locale: str | None
    time_zone: str | None
    email_marketing_consent_state: ConsentState
    sms_marketing_consent_state: ConsentState
    sms_consent_state: ConsentState


class ItemRow(NamedTuple):
    order_id: int
    title: str
    quantity: int
    unit_price: Decimal
    product_id: str | None
    image_url: str | None
    product_url: str | None


class OrderRow(NamedTuple):
    id: int
    source: str
    shop: str
    external_id: str
    name: str | None
    currency: str
    subtotal: Decimal
    total: Decimal
    total_tax: Decimal
    total_discounts: Decimal
    total_shipping: Decimal
    refunded_amount: Decimal
    financial_status: str | None
    tracking_url: str | None
    placed_at: datetime | None
    delivered_at: datetime | None
    delivery_confirmed_at: datetime | None
    cancelled_at: datetime | None
    returned_at: datetime | None
    reviewed_at: datetime | None
    items: list[ItemRow]  # in id order; not a column: set from the order's lines


def read_touchpoints(session: Session, worker: str, ids: Sequence[int]) -> list[TouchpointRow]:
    """The touchpoints of ``ids`` that ``worker`` still holds, in due order."""
    rows = _rows(session, _touchpoints, {"ids": ids}, {"worker": worker})
    return [TouchpointRow._make(row) for row in rows]


def read_customers(session: Session, ids: Collection[int]) -> dict[int, CustomerRow]:
    """The customers of ``ids``, by id."""
    if not ids:
        return {}
    rows = _rows(session, _customers, {"ids": ids})
    return {row[0]: CustomerRow._make(row) for row in rows}


def read_orders(session: Session, ids: Collection[int]) -> dict[int, OrderRow]:
    """The orders of ``ids``, by id, each with its lines."""
    if not ids:
        return {}
    items: dict[int, list[ItemRow]] = {order_id: [] for order_id in ids}
    for row in _rows(session, _items, {"ids": ids}):
        items[row[0]].append(ItemRow._make(row))
    rows = _rows(session, _orders, {"ids": ids})
    return {row[0]: OrderRow._make((*row, items[row[0]])) for row in rows}


def read_recent_sends(
    session: Session, customer_ids: Collection[int], since: datetime
) -> Iterable[Sequence[Any]]:
    """(customer id, channel, campaign id, sent at) of the customers' touchpoints sent since
    ``since``. Built once like the chunk's other reads: built, compiled and run by SQLAlchemy
    for every chunk, it cost a worker about 4.5K instructions per message (callgrind)."""
    return _rows(session, _recent_sends, {"ids": customer_ids}, {"since": since})


def _rows(
    session: Session,
    statement: Callable[[str], Select[Any]],
    lists: dict[str, Collection[int]],
    values: dict[str, Any] | None = None,
) -> Iterable[Sequence[Any]]:
    """The rows of ``statement(dialect)`` for the id lists and plain values given, their
    columns typed as the ORM types them."""
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        return session.execute(
            statement(dialect), {**{k: list(v) for k, v in lists.items()}, **(values or {})}
        )
    params = {name: array_literal(ids) for name, ids in lists.items()}
    rows = fetch_all(session.connection(), statement(dialect), {**params, **(values or {})})
    return map(orm_typed(*_COLUMNS[statement]), rows)


@cache
def _touchpoints(dialect: str) -> Select[Any]:
    columns = [Touchpoint.__table__.c[name] for name in TouchpointRow._fields]
    return (
        select(*columns)
        .where(
            among_parameter(dialect, Touchpoint.id, "ids"),
            Touchpoint.claimed_by == bindparam("worker"),
            # The rows are found by their ids; the status only checks them. Compared plainly,
            # on tables without statistics PostgreSQL walked every held row of every worker
            # through ``ix_touchpoints_due`` (and the entries left by every row claimed
            # before): ten times the statement's time (see ``status_among``).
            status_among(dialect, HELD),
        )
        .order_by(Touchpoint.due_at, Touchpoint.id)
    )


@cache
def _customers(dialect: str) -> Select[Any]:
    columns = [Customer.__table__.c[name] for name in CustomerRow._fields]
    return select(*columns).where(among_parameter(dialect, Customer.id, "ids"))


@cache
def _orders(dialect: str) -> Select[Any]:
    columns = [Order.__table__.c[name] for name in OrderRow._fields[:-1]]
    return select(*columns).where(among_parameter(dialect, Order.id, "ids"))


@cache
def _items(dialect: str) -> Select[Any]:
    columns = [OrderItem.__table__.c[name] for name in ItemRow._fields]
    return (
        select(*columns)
        .where(among_parameter(dialect, OrderItem.order_id, "ids"))
        .order_by(OrderItem.id)
    )


_RECENT_SENDS = ("customer_id", "channel", "campaign_id", "sent_at")


@cache
def _recent_sends(dialect: str) -> Select[Any]:
    columns = [Touchpoint.__table__.c[name] for name in _RECENT_SENDS]
    return select(*columns).where(
        among_parameter(dialect, Touchpoint.customer_id, "ids"),
        # The rows are found by their customers; the status only checks them. Compared
        # plainly, on tables without statistics, PostgreSQL walked every sent touchpoint
        # through ``ix_touchpoints_due`` for each chunk: a chunk's slowest statement,
        # growing with all that was ever sent (see ``status_among``).
        status_among(dialect, (TouchpointStatus.SENT,)),
        Touchpoint.__table__.c.sent_at >= bindparam("since"),
    )


# Each statement's model and columns: its rows typed as the ORM types them.
_COLUMNS: dict[Callable[[str], Select[Any]], tuple[Any, tuple[str, ...]]] = {
    _touchpoints: (Touchpoint, TouchpointRow._fields),
    _customers: (Customer, CustomerRow._fields),
    _orders: (Order, OrderRow._fields[:-1]),
    _items: (OrderItem, ItemRow._fields),
    _recent_sends: (Touchpoint, _RECENT_SENDS),
}
