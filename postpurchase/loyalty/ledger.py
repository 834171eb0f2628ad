"""The points ledger: append-only rows, one per cause; a balance is the sum of its rows.

Causes make every write idempotent (a second delivery of the same event inserts nothing):

    award:order:<order id>                       one award per paid order
    reversal:refund:<order id>:<refund id>       one reversal per refund, proportional
    reversal:refunded:<order id>                 refunded with no refund detail: the remainder
    reversal:cancel:<order id>                   cancelled after payment: the remainder
    expiry:...                                   see postpurchase.loyalty.expiry
    adjustment:<key>                             a manual adjustment

Reversals never take an order below zero (the points reversed for an order never exceed the
points it was awarded) nor the customer's balance: points that already expired or were spent
are not taken back. Writers lock the customer row first (``FOR UPDATE`` on PostgreSQL;
SQLite has one writer), so concurrent workers cannot both spend the same remainder.

``apply_events`` is the entry point for the event processor. For a whole batch it locks the
customers, reads what the ledger holds for them and their orders in a few queries, works out
each event's rows in Python, in the batch's order (each event sees the rows of the events
before it, as if they had been applied one at a time), and writes the new rows in one insert.
``apply_event`` does the same for one event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, cast

from sqlalchemy import Insert, and_, case, func, select
from sqlalchemy.orm import Session

from postpurchase.events import CanonicalEvent, EventType, Refund
from postpurchase.exceptions import ConcurrentChange, InvalidInput
from postpurchase.loyalty.config import ExpiryMode, LoyaltyConfig
from postpurchase.loyalty.earning import (
    BonusLine,
    OrderAmounts,
    add_months,
    award_for,
    round_points,
)
from postpurchase.store.membership import among
from postpurchase.store.models import (
    Customer,
    CustomerTier,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
    OrderItem,
    Product,
)
from postpurchase.store.statements import dialect_insert, insert_ignoring_conflicts

Ledger = LoyaltyLedgerEntry


@dataclass(frozen=True)
class LedgerChange:
    """A row just written, with the customer's balance after it (for templates)."""

    kind: LedgerKind
    points: int
    cause: str
    order_id: int | None
    balance: int


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


@dataclass(frozen=True)
class LedgerEvent:
    """An event to apply: its stored order after the event was applied to it (None for events
    that are not about an order) and its customer.

    ``refunds`` are the order's recorded refunds, oldest first, each with what they add up to
    through it: every event about the order reverses those not reversed yet, so a refund
    recorded before the award is reversed once the award is made. Left empty, only the
    event's own refund is reversed, read against the order's whole ``refunded_amount``.
    """

    event: CanonicalEvent
    order: LedgerOrder | None
    customer_id: int
    refunds: Sequence[tuple[Refund, Decimal]] = ()


def ledger_insert(session: Session) -> Insert:
    """An INSERT into the ledger that skips rows whose cause is already there."""
    insert: Insert = dialect_insert(session, Ledger).on_conflict_do_nothing(
        index_elements=["cause"]
    )
    return insert


def _append(
    session: Session,
    *,
    customer_id: int,
    order_id: int | None,
    kind: LedgerKind,
    points: int,
    cause: str,
    note: str | None,
    expires_at: datetime | None = None,
) -> LedgerChange | None:
    """Insert one row unless its cause exists; the change, or None when it was a duplicate."""
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "order_id": order_id,
        "kind": kind,
        "points": points,
        "cause": cause,
        "note": note,
        "expires_at": expires_at,
    }
    inserted = session.execute(ledger_insert(session).values(**values).returning(Ledger.id))
    if inserted.scalar_one_or_none() is None:
        return None
    return LedgerChange(kind, points, cause, order_id, balance(session, customer_id))


def balance(session: Session, customer_id: int) -> int:
    """The customer's points: the sum of their ledger rows (0 with none)."""
    total = session.scalar(select(func.sum(Ledger.points)).where(Ledger.customer_id == customer_id))
    return int(total or 0)


def points_for_order(session: Session, order_id: int) -> int:
    """Net points an order brought: its award less its reversals (0 when it earned nothing)."""
    total = session.scalar(
        select(func.sum(Ledger.points)).where(
            Ledger.order_id == order_id, Ledger.kind.in_([LedgerKind.AWARD, LedgerKind.REVERSAL])
        )
    )
    return int(total or 0)


def _lock_customers(session: Session, customer_ids: Sequence[int]) -> None:
    # Serialises ledger writers per customer; rows are locked in id order, in one statement.
    # SQLite needs nothing: its transactions take the single write lock when they begin.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Customer.id)
            .where(among(session, Customer.id, customer_ids))
            .order_by(Customer.id)
            .with_for_update()
        )


@dataclass(frozen=True)
class _Award:
    """Award a paid order once, earned at ``paid_at``."""

    order: LedgerOrder
    customer_id: int
    paid_at: datetime

    @property
    def cause(self) -> str:
        return f"award:order:{self.order.id}"


@dataclass(frozen=True)
class _Reversal:
    """Reverse a refund's share of the order's award, or (without a refund) what remains.

    ``refunded_through`` is the order's refunded total through this refund (None: read the
    order's ``refunded_amount``)."""

    order: LedgerOrder
    customer_id: int
    cause: str
    note: str
    refund: Refund | None = None
    refunded_through: Decimal | None = None


def _refund_reversal(
    order: LedgerOrder, customer_id: int, refund: Refund, refunded_through: Decimal | None
) -> _Reversal:
    return _Reversal(
        order,
        customer_id,
        f"reversal:refund:{order.id}:{refund.external_id}",
        f"refund {refund.external_id}: {refund.amount} {refund.currency} of {order.total}",
        refund,
        refunded_through,
    )


def _intents(item: LedgerEvent, config: LoyaltyConfig) -> list[_Award | _Reversal]:
    """What the event asks of the ledger, in order, from the event and its order alone: an
    award (a paid order), then a reversal per refund of the order, then, for an order
    refunded without refund detail, the remainder."""
    order, event, customer_id = item.order, item.event, item.customer_id
    if order is None:
        return []
    if order.cancelled_at is not None or event.type is EventType.ORDER_CANCELLED:
        return [_Reversal(order, customer_id, f"reversal:cancel:{order.id}", "order cancelled")]
    intents: list[_Award | _Reversal] = []
    paid = event.type is EventType.ORDER_PAID or order.paid_at is not None
    if event.type is not EventType.ORDER_REFUNDED and paid:
        if order.currency == config.shop_currency:  # amounts in another currency earn nothing
            intents.append(_Award(order, customer_id, order.paid_at or event.occurred_at))
    refunds: Sequence[tuple[Refund, Decimal | None]] = item.refunds
    if not refunds and event.refund is not None:
        refunds = [(event.refund, None)]
    intents += [
        _refund_reversal(order, customer_id, refund, through) for refund, through in refunds
    ]
    refunded = (order.financial_status or "").lower() == "refunded"
    if event.type is EventType.ORDER_REFUNDED and event.refund is None and refunded:
        # After the listed refunds, so that each takes its own share first.
        intents.append(
            _Reversal(order, customer_id, f"reversal:refunded:{order.id}", "order refunded")
        )
    return intents


@dataclass
class _Holdings:
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


def _holdings(session: Session, customer_ids: list[int], order_ids: list[int]) -> _Holdings:
    held = _Holdings()
    order_rows = select(Ledger.order_id, Ledger.kind, Ledger.points, Ledger.cause).where(
        among(session, Ledger.order_id, order_ids)
    )
    for row_order_id, kind, points, cause in session.execute(order_rows):
        order_id = cast(int, row_order_id)  # selected by order id: never None
        held.causes.add(cause)
        if kind is LedgerKind.AWARD:
            held.awards[order_id] = points
        if kind in (LedgerKind.AWARD, LedgerKind.REVERSAL):
            held.net[order_id] = held.net.get(order_id, 0) + points
    awards = func.sum(case((Ledger.kind == LedgerKind.AWARD, 1), else_=0))
    per_customer = (
        select(Ledger.customer_id, func.sum(Ledger.points), awards)
        .where(among(session, Ledger.customer_id, customer_ids))
        .group_by(Ledger.customer_id)
    )
    for customer_id, total, awarded in session.execute(per_customer):
        held.balances[customer_id] = int(total)
        if awarded:
            held.earners.add(customer_id)
    return held


@dataclass(frozen=True)
class _AwardFacts:
    """What awards are computed from, besides the order itself."""

    tiers: dict[int, str]  # customer id: tier name
    first_paid: dict[int, datetime]  # customer id: earliest paid_at of a paid, live order
    items: dict[int, list[BonusLine]]  # order id: its lines, typed from the catalogue

    def first_order(self, award: _Award, held: _Holdings) -> bool:
        """No other order of the customer earned points, and none was paid before this one."""
        if award.customer_id in held.earners:
            return False  # not this order's own award: that one would be a duplicate
        earliest = self.first_paid.get(award.customer_id)
        paid_at = award.order.paid_at
        return earliest is None or (paid_at is not None and earliest >= paid_at)


def _award_facts(session: Session, awards: list[_Award], config: LoyaltyConfig) -> _AwardFacts:
    customer_ids = sorted({a.customer_id for a in awards})
    tiers = select(CustomerTier.customer_id, CustomerTier.tier).where(
        among(session, CustomerTier.customer_id, customer_ids)
    )
    facts = _AwardFacts({customer_id: tier for customer_id, tier in session.execute(tiers)}, {}, {})
    if any(bonus.first_order for bonus in config.bonuses):
        earliest = (
            select(Order.customer_id, func.min(Order.paid_at))
            .where(
                among(session, Order.customer_id, customer_ids),
                Order.paid_at.is_not(None),
                Order.cancelled_at.is_(None),
            )
            .group_by(Order.customer_id)
        )
        for customer_id, paid_at in session.execute(earliest):
            # selected by customer, among orders with paid_at: neither is None
            facts.first_paid[cast(int, customer_id)] = cast(datetime, paid_at)
    if any(bonus.has_product_condition for bonus in config.bonuses):
        order_ids = sorted({a.order.id for a in awards})
        # A line's type is its product's in the catalogue (order lines carry none on Shopify
        # or WooCommerce), else what the line itself said (a generic event may say it).
        lines = (
            select(
                OrderItem.order_id,
                OrderItem.product_id,
                OrderItem.vendor,
                func.coalesce(Product.product_type, OrderItem.product_type).label("product_type"),
                OrderItem.quantity,
                OrderItem.unit_price,
            )
            .join(Order, Order.id == OrderItem.order_id)
            .outerjoin(
                Product,
                and_(Product.source == Order.source, Product.external_id == OrderItem.product_id),
            )
            .where(among(session, OrderItem.order_id, order_ids))
            .order_by(OrderItem.id)
        )
        for line in session.execute(lines):
            facts.items.setdefault(line.order_id, []).append(line)
    return facts


def _award_row(
    award: _Award, held: _Holdings, facts: _AwardFacts, config: LoyaltyConfig
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


def _reversal_row(
    reversal: _Reversal, held: _Holdings, config: LoyaltyConfig
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


def apply_events(
    session: Session, events: Sequence[LedgerEvent], *, config: LoyaltyConfig
) -> list[list[LedgerChange]]:
    """Apply canonical events to the ledger in their order, inside the caller's transaction.

    Per event, with its order as stored after the event was applied to it:

    - ``order.paid`` (or any order event but ``order.refunded`` once the order has
      ``paid_at``): award once, earned at ``paid_at`` (else the event's time), which starts
      its expiry clock; nothing when the order is cancelled or in another currency than
      ``shop_currency``;
    - each refund of the order (``LedgerEvent.refunds``, else an ``order.refunded`` event's
      own refund): reverse in proportion to the refund, once per refund id; the refund that
      brings the order's refunds to its total takes what remains;
    - ``order.refunded`` without refund detail and with ``financial_status`` "refunded":
      reverse the remainder;
    - ``order.cancelled`` (or any order event once ``cancelled_at`` is set): reverse the
      remainder of an award; a cancelled order that was never paid earns nothing.

    Returns, per event, the rows written (none when it changes nothing, duplicates
    included). ConcurrentChange when a row's cause was written meanwhile by a transaction
    that did not hold the customer's lock (another customer on the same order): the caller
    rolls back and retries.
    """
    intents = [_intents(item, config) for item in events]
    wanted = [intent for of_event in intents for intent in of_event]
    if not wanted:
        return [[] for _ in events]
    customer_ids = sorted({intent.customer_id for intent in wanted})
    _lock_customers(session, customer_ids)
    held = _holdings(session, customer_ids, sorted({intent.order.id for intent in wanted}))
    awards = [i for i in wanted if isinstance(i, _Award) and i.cause not in held.causes]
    facts = _award_facts(session, awards, config) if awards else None
    rows: list[dict[str, Any]] = []
    changes: list[list[LedgerChange]] = []
    for of_event in intents:
        changes.append([])
        for intent in of_event:
            if intent.cause in held.causes:
                continue
            row: dict[str, Any] | None
            if isinstance(intent, _Award):
                assert facts is not None  # loaded for every award not yet in the ledger
                row = _award_row(intent, held, facts, config)
            else:
                row = _reversal_row(intent, held, config)
            if row is None:
                continue
            after = held.add(row)
            rows.append(row)
            changes[-1].append(
                LedgerChange(row["kind"], row["points"], row["cause"], row["order_id"], after)
            )
    # The cause is the ledger's only unique key besides the id: a row skipped as a conflict is
    # a cause written meanwhile.
    written = insert_ignoring_conflicts(session, Ledger, rows)
    if written < len(rows):
        raise ConcurrentChange(
            f"{len(rows) - written} ledger row(s) of this batch were written meanwhile by "
            "another worker"
        )
    return changes


def apply_event(
    session: Session,
    *,
    event: CanonicalEvent,
    order: Order | None,
    customer: Customer,
    config: LoyaltyConfig,
) -> LedgerChange | None:
    """Apply one canonical event to the ledger, inside the caller's transaction: see
    ``apply_events``. ``order`` is the stored order after the caller applied the event to it
    (None for events that are not about an order), ``customer`` its stored customer.

    Returns the last row written (with the balance after all of them), or None."""
    changes = apply_events(session, [LedgerEvent(event, order, customer.id)], config=config)[0]
    return changes[-1] if changes else None


def adjust(
    session: Session,
    *,
    customer_id: int,
    points: int,
    reason: str,
    key: str | None = None,
) -> LedgerChange:
    """Add (or with negative ``points`` take away) points by hand, with a reason.

    ``key`` makes the adjustment idempotent (the same key twice adds once); without one each
    call is a new adjustment. InvalidInput for zero points, an empty reason, a balance that
    would go below zero, or a key already used.
    """
    if points == 0:
        raise InvalidInput("points: an adjustment must add or remove at least one point")
    if not reason.strip():
        raise InvalidInput("--reason: say why the points are adjusted")
    _lock_customers(session, [customer_id])
    current = balance(session, customer_id)
    if current + points < 0:
        raise InvalidInput(
            f"points: removing {-points} would leave a negative balance (balance is {current})"
        )
    cause = f"adjustment:{key or uuid.uuid4().hex}"
    change = _append(
        session,
        customer_id=customer_id,
        order_id=None,
        kind=LedgerKind.ADJUSTMENT,
        points=points,
        cause=cause,
        note=reason.strip(),
    )
    if change is None:
        raise InvalidInput(f"--key: adjustment {key!r} was already applied")
    return change
