"""What an event asks of the ledger, and the rows that carry it out.

``intents`` reads an award (a paid order) and reversals (each refund, a cancellation, a
refund without detail) from a ``LedgerEvent`` and its order alone; ``Holdings`` is what the
ledger already holds for a batch, and ``award_row``/``reversal_row`` turn an intent into the
row to append (or nothing, when its cause is already there), keeping the holdings current.
``ledger.apply_events`` drives them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import Select, Table, and_, case, func, select
from sqlalchemy.orm import Session

from postpurchase.events import EventType
from postpurchase.loyalty.config import ExpiryMode, LoyaltyConfig
from postpurchase.loyalty.earning import (
    BonusLine,
    OrderAmounts,
    add_months,
    award_for,
    round_points,
)
from postpurchase.store.membership import (
    among,
    among_parameter,
    each_among,
    each_among_parameter,
    rows_among,
)
from postpurchase.store.models import (
    CustomerTier,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
    OrderItem,
    Product,
)
from postpurchase.stored_events import StoredEvent, StoredRefund

# The statements below are built on the tables' columns, not the entities': they return plain
# rows, and SQLAlchemy runs them without its ORM layer (its execution path cost a batch more
# client time than the rows it read).
_LEDGER = cast(Table, LoyaltyLedgerEntry.__table__).c
_TIERS = cast(Table, CustomerTier.__table__).c
_ORDERS_TABLE = cast(Table, Order.__table__)
_ORDERS = _ORDERS_TABLE.c
_ITEMS = cast(Table, OrderItem.__table__).c
_PRODUCTS_TABLE = cast(Table, Product.__table__)
_PRODUCTS = _PRODUCTS_TABLE.c


class LedgerOrder(OrderAmounts, Protocol):
    """What the ledger reads of an order: a stored row, or the values a batch holds for it."""

    @property
    def id(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def total(self) -> Decimal: ...
    @property
    def refunded_amount(self) -> Decimal: ...
    @property
    def financial_status(self) -> str | None: ...
    @property
    def paid_at(self) -> datetime | None: ...
    @property
    def cancelled_at(self) -> datetime | None: ...


# The events and intents below are named tuples, not frozen dataclasses: a drain makes one
# LedgerEvent per event of every batch, and a frozen dataclass took about twice as long to make
# (each field set through ``object.__setattr__``).


class LedgerEvent(NamedTuple):
    """An event to apply: its stored order after the event was applied to it (None for events
    that are not about an order) and its customer.

    ``refunds`` are the order's recorded refunds, oldest first, each with what they add up to
    through it: every event about the order reverses those not reversed yet, so a refund
    recorded before the award is reversed once the award is made. Left empty, only the
    event's own refund is reversed, read against the order's whole ``refunded_amount``.
    """

    event: StoredEvent
    order: LedgerOrder | None
    customer_id: int
    refunds: Sequence[tuple[StoredRefund, Decimal]] = ()


class Award(NamedTuple):
    """Award a paid order once, earned at ``paid_at``; ``cause`` is ``award:order:<id>``.

    The cause is a field, made once: a batch reads it several times per event (every event of
    a paid order asks for its award again), and a property built the string each time."""

    order: LedgerOrder
    customer_id: int
    paid_at: datetime
    cause: str


class Reversal(NamedTuple):
    """Reverse a refund's share of the order's award, or (without a refund) what remains.

    ``refunded_through`` is the order's refunded total through this refund (None: read the
    order's ``refunded_amount``)."""

    order: LedgerOrder
    customer_id: int
    cause: str
    note: str
    refund: StoredRefund | None = None
    refunded_through: Decimal | None = None


def refund_reversal(
    order: LedgerOrder, customer_id: int, refund: StoredRefund, refunded_through: Decimal | None
) -> Reversal:
    return Reversal(
        order,
        customer_id,
        f"reversal:refund:{order.id}:{refund.external_id}",
        f"refund {refund.external_id}: {refund.amount} {refund.currency} of {order.total}",
        refund,
        refunded_through,
    )


# An enum member read through its class costs about as much as the rest of a test on it:
# ``intents`` runs for every event of a batch.
_CANCELLED = EventType.ORDER_CANCELLED
_PAID = EventType.ORDER_PAID
_REFUNDED = EventType.ORDER_REFUNDED


def intents(item: LedgerEvent, config: LoyaltyConfig) -> list[Award | Reversal]:
    """What the event asks of the ledger, in order, from the event and its order alone: an
    award (a paid order), then a reversal per refund of the order, then, for an order
    refunded without refund detail, the remainder."""
    order, event, customer_id = item.order, item.event, item.customer_id
    if order is None:
        return []
    kind = event.type
    if order.cancelled_at is not None or kind is _CANCELLED:
        return [Reversal(order, customer_id, f"reversal:cancel:{order.id}", "order cancelled")]
    intents: list[Award | Reversal] = []
    paid = kind is _PAID or order.paid_at is not None
    if kind is not _REFUNDED and paid:
        if order.currency == config.shop_currency:  # amounts in another currency earn nothing
            paid_at = order.paid_at or event.occurred_at
            intents.append(Award(order, customer_id, paid_at, f"award:order:{order.id}"))
    refunds: Sequence[tuple[StoredRefund, Decimal | None]] = item.refunds
    own_refund = event.refund
    if not refunds and own_refund is not None:
        refunds = [(own_refund, None)]
    if refunds:
        intents += [
            refund_reversal(order, customer_id, refund, through) for refund, through in refunds
        ]
    if (
        kind is _REFUNDED
        and own_refund is None
        and (order.financial_status or "").lower() == "refunded"
    ):
        # After the listed refunds, so that each takes its own share first.
        intents.append(
            Reversal(order, customer_id, f"reversal:refunded:{order.id}", "order refunded")
        )
    return intents


@dataclass
class Holdings:
    """What the ledger holds for a batch's customers and orders, kept current as rows are
    added in memory."""

    causes: set[str] = field(default_factory=set)
    awards: dict[int, int] = field(default_factory=dict)  # order id: points awarded
    net: dict[int, int] = field(default_factory=dict)  # order id: awarded less reversed
    balances: dict[int, int] = field(default_factory=dict)  # customer id: balance
    earners: set[int] = field(default_factory=set)  # customers with an award for any order

    def add(self, row: dict[str, Any]) -> int:
        """Count a new award or reversal row; the customer's balance after it."""
        customer_id, order_id, points = row["customer_id"], row["order_id"], row["points"]
        self.causes.add(row["cause"])
        if row["kind"] is LedgerKind.AWARD:
            self.awards[order_id] = points
            self.earners.add(customer_id)
        self.net[order_id] = self.net.get(order_id, 0) + points
        self.balances[customer_id] = self.balances.get(customer_id, 0) + points
        return self.balances[customer_id]


_HELD_OF_ORDERS = select(_LEDGER.order_id, _LEDGER.kind, _LEDGER.points, _LEDGER.cause)
_AWARDED = func.sum(case((_LEDGER.kind == LedgerKind.AWARD, 1), else_=0))
_HELD_OF_CUSTOMERS = select(_LEDGER.customer_id, func.sum(_LEDGER.points), _AWARDED).group_by(
    _LEDGER.customer_id
)


def holdings(session: Session, customer_ids: list[int], order_ids: list[int]) -> Holdings:
    held = Holdings()
    order_rows = rows_among(
        session,
        _HELD_OF_ORDERS,
        lambda statement: each_among(session, statement, _LEDGER.order_id, order_ids),
        _PG_HELD_OF_ORDERS,
        {"order_ids": order_ids},
    )
    for row_order_id, kind, points, cause in order_rows:
        order_id = cast(int, row_order_id)  # selected by order id: never None
        held.causes.add(cause)
        # compared by value: PostgreSQL's rows (``rows_among``) give the kind as its string
        if kind == LedgerKind.AWARD:
            held.awards[order_id] = points
        if kind == LedgerKind.AWARD or kind == LedgerKind.REVERSAL:
            held.net[order_id] = held.net.get(order_id, 0) + points
    per_customer = rows_among(
        session,
        _HELD_OF_CUSTOMERS,
        lambda statement: each_among(session, statement, _LEDGER.customer_id, customer_ids),
        _PG_HELD_OF_CUSTOMERS,
        {"customer_ids": customer_ids},
    )
    for customer_id, total, awarded in per_customer:
        held.balances[customer_id] = int(total)
        if awarded:
            held.earners.add(customer_id)
    return held


@dataclass(frozen=True)
class AwardFacts:
    """What awards are computed from, besides the order itself."""

    tiers: dict[int, str]  # customer id: tier name
    first_paid: dict[int, datetime]  # customer id: earliest paid_at of a paid, live order
    items: dict[int, list[BonusLine]]  # order id: its lines, typed from the catalogue

    def first_order(self, award: Award, held: Holdings) -> bool:
        """No other order of the customer earned points, and none was paid before this one."""
        if award.customer_id in held.earners:
            return False  # not this order's own award: that one would be a duplicate
        earliest = self.first_paid.get(award.customer_id)
        paid_at = award.order.paid_at
        return earliest is None or (paid_at is not None and earliest >= paid_at)


_TIERS_OF = select(_TIERS.customer_id, _TIERS.tier)
_FIRST_PAID = (
    select(_ORDERS.customer_id, func.min(_ORDERS.paid_at))
    .where(_ORDERS.paid_at.is_not(None), _ORDERS.cancelled_at.is_(None))
    .group_by(_ORDERS.customer_id)
)


def award_facts(session: Session, awards: list[Award], config: LoyaltyConfig) -> AwardFacts:
    customer_ids = sorted({a.customer_id for a in awards})
    tiers = rows_among(
        session,
        _TIERS_OF,
        lambda statement: statement.where(among(session, _TIERS.customer_id, customer_ids)),
        _PG_TIERS_OF,
        {"customer_ids": customer_ids},
    )
    facts = AwardFacts({customer_id: tier for customer_id, tier in tiers}, {}, {})
    if any(bonus.first_order for bonus in config.bonuses):
        earliest = rows_among(
            session,
            _FIRST_PAID,
            lambda statement: statement.where(among(session, _ORDERS.customer_id, customer_ids)),
            _PG_FIRST_PAID,
            {"customer_ids": customer_ids},
        )
        for customer_id, paid_at in earliest:
            # selected by customer, among orders with paid_at: neither is None; in UTC, as the
            # store's columns give it
            facts.first_paid[cast(int, customer_id)] = cast(datetime, paid_at).astimezone(UTC)
    if any(bonus.has_product_condition for bonus in config.bonuses):
        order_ids = sorted({a.order.id for a in awards})
        lines = rows_among(
            session,
            _BONUS_LINES,
            lambda _: bonus_lines(session, order_ids),
            _PG_BONUS_LINES,
            {"order_ids": order_ids},
        )
        for line in map(_Line._make, lines):
            facts.items.setdefault(line.order_id, []).append(line)
    return facts


class _Line(NamedTuple):
    """An order line as bonus conditions read it (``BonusLine``), with its order."""

    order_id: int
    product_id: str | None
    vendor: str | None
    product_type: str | None
    quantity: int
    unit_price: Decimal


# ``bonus_lines`` without its orders named
_BONUS_LINES = (
    select(
        _ITEMS.order_id,
        _ITEMS.product_id,
        _ITEMS.vendor,
        func.coalesce(_PRODUCTS.product_type, _ITEMS.product_type).label("product_type"),
        _ITEMS.quantity,
        _ITEMS.unit_price,
    )
    .join(_ORDERS_TABLE, _ORDERS.id == _ITEMS.order_id)
    .outerjoin(
        _PRODUCTS_TABLE,
        and_(
            _PRODUCTS.source == _ORDERS.source,
            _PRODUCTS.shop == _ORDERS.shop,
            _PRODUCTS.external_id == _ITEMS.product_id,
        ),
    )
    .order_by(_ITEMS.id)
)


def bonus_lines(
    session: Session, order_ids: Collection[int]
) -> Select[int, str | None, str | None, str, int, Decimal]:
    """The lines of ``order_ids`` as bonus conditions read them, in id order.

    A line's type is its product's in the catalogue (order lines carry none on Shopify or
    WooCommerce), else what the line itself said (a generic event may say it).
    """
    # The orders too are named by the list: with the items alone named, a planner without
    # statistics on orders joined them by scanning the whole table, every batch.
    return _BONUS_LINES.where(
        among(session, _ITEMS.order_id, order_ids), among(session, _ORDERS.id, order_ids)
    )


# The same reads on PostgreSQL, built once with their lists as named parameters, and run by
# psycopg (``driver_statements``): SQLAlchemy's handling of each execution, and building the
# statements again for every batch, cost a drainer more CPU than reading their rows.
_PG = "postgresql"
_PG_HELD_OF_ORDERS = each_among_parameter(_HELD_OF_ORDERS, _LEDGER.order_id, "order_ids")
_PG_HELD_OF_CUSTOMERS = each_among_parameter(
    _HELD_OF_CUSTOMERS, _LEDGER.customer_id, "customer_ids"
)
_PG_TIERS_OF = _TIERS_OF.where(among_parameter(_PG, _TIERS.customer_id, "customer_ids"))
_PG_FIRST_PAID = _FIRST_PAID.where(among_parameter(_PG, _ORDERS.customer_id, "customer_ids"))
# The orders alone are named by the list, their lines reached by the join: with the lines
# named by it too, PostgreSQL looked each order's lines up with the whole list as a condition,
# sorting the list again for every order (about half of the statement's time at 25,000 orders).
_PG_BONUS_LINES = _BONUS_LINES.where(among_parameter(_PG, _ORDERS.id, "order_ids"))


def award_row(
    award: Award, held: Holdings, facts: AwardFacts, config: LoyaltyConfig
) -> dict[str, Any]:
    tier = facts.tiers.get(award.customer_id)
    points = award_for(
        award.order,
        facts.items.get(award.order.id, []),
        first_order=facts.first_order(award, held),
        multiplier=config.tiers.level(tier).multiplier,
        config=config,
    )
    expiry = config.expiry
    expires_at = (
        add_months(award.paid_at, expiry.months)
        if expiry.mode is ExpiryMode.AFTER_EARNED and expiry.months
        else None
    )
    return {
        "customer_id": award.customer_id,
        "order_id": award.order.id,
        "kind": LedgerKind.AWARD,
        "points": points.points,
        "cause": award.cause,
        "note": points.note + (f", tier {tier}" if tier else ""),
        "expires_at": expires_at,
    }


def reversal_row(
    reversal: Reversal, held: Holdings, config: LoyaltyConfig
) -> dict[str, Any] | None:
    """The reversal, capped so neither the order nor the balance goes below zero; None when
    the order earned nothing or nothing is left to take back."""
    order = reversal.order
    awarded = held.awards.get(order.id)
    if awarded is None:
        return None
    wanted = None  # all that remains
    refund = reversal.refund
    if refund is not None:
        # A refund that brings the refunded amount to the order's total (or beyond) takes what
        # remains, so a fully refunded order ends at zero whatever the rounding did before.
        through = reversal.refunded_through
        refunded = order.refunded_amount if through is None else through
        fully = order.total <= 0 or max(refund.amount, refunded) >= order.total
        if not fully:
            share = Decimal(awarded) * refund.amount / order.total
            wanted = round_points(share, config.earning.rounding)
    # Points already expired or spent cannot be taken back twice: the balance caps it too.
    remaining = min(held.net.get(order.id, 0), held.balances.get(reversal.customer_id, 0))
    points = remaining if wanted is None else min(wanted, remaining)
    if points <= 0:
        return None
    return {
        "customer_id": reversal.customer_id,
        "order_id": order.id,
        "kind": LedgerKind.REVERSAL,
        "points": -points,
        "cause": reversal.cause,
        "note": reversal.note,
        "expires_at": None,
    }
