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

``apply_event`` is the one entry point for the event processor.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Insert, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postpurchase.events import CanonicalEvent, EventType, Refund
from postpurchase.exceptions import InvalidInput
from postpurchase.loyalty.config import ExpiryMode, LoyaltyConfig
from postpurchase.loyalty.earning import add_months, award_for, round_points
from postpurchase.store.models import (
    Customer,
    CustomerTier,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
)

Ledger = LoyaltyLedgerEntry


@dataclass(frozen=True)
class LedgerChange:
    """A row just written, with the customer's balance after it (for templates)."""

    kind: LedgerKind
    points: int
    cause: str
    order_id: int | None
    balance: int


def ledger_insert(session: Session) -> Insert:
    """An INSERT into the ledger that skips rows whose cause is already there."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(Ledger).on_conflict_do_nothing(index_elements=["cause"])
    return sqlite.insert(Ledger).on_conflict_do_nothing(index_elements=["cause"])


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


def _lock_customer(session: Session, customer_id: int) -> None:
    # Serialises ledger writers per customer; SQLite renders no FOR UPDATE (single writer).
    session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())


def _award_points(session: Session, order_id: int) -> int | None:
    return session.scalar(
        select(Ledger.points).where(Ledger.order_id == order_id, Ledger.kind == LedgerKind.AWARD)
    )


def _is_first_order(session: Session, order: Order, customer_id: int) -> bool:
    """No other order of the customer earned points, and none was paid before this one."""
    other_award = session.scalar(
        select(Ledger.id)
        .where(
            Ledger.customer_id == customer_id,
            Ledger.kind == LedgerKind.AWARD,
            Ledger.order_id != order.id,
        )
        .limit(1)
    )
    if other_award is not None:
        return False
    earlier = select(Order.id).where(
        Order.customer_id == customer_id,
        Order.id != order.id,
        Order.paid_at.is_not(None),
        Order.cancelled_at.is_(None),
    )
    if order.paid_at is not None:
        earlier = earlier.where(Order.paid_at < order.paid_at)
    return session.scalar(earlier.limit(1)) is None


def award_order(
    session: Session, *, order: Order, customer_id: int, config: LoyaltyConfig, paid_at: datetime
) -> LedgerChange | None:
    """Award a paid order once. Nothing for a cancelled order or one in another currency."""
    if order.cancelled_at is not None or order.currency != config.shop_currency:
        return None
    cause = f"award:order:{order.id}"
    if session.scalar(select(Ledger.id).where(Ledger.cause == cause)) is not None:
        return None  # a duplicate delivery: skip the arithmetic, the insert would skip anyway
    _lock_customer(session, customer_id)
    tier = session.scalar(select(CustomerTier.tier).where(CustomerTier.customer_id == customer_id))
    award = award_for(
        order,
        order.items,
        first_order=_is_first_order(session, order, customer_id),
        multiplier=config.tiers.level(tier).multiplier,
        config=config,
    )
    expiry = config.expiry
    expires_at = (
        add_months(paid_at, expiry.months)
        if expiry.mode is ExpiryMode.AFTER_EARNED and expiry.months
        else None
    )
    return _append(
        session,
        customer_id=customer_id,
        order_id=order.id,
        kind=LedgerKind.AWARD,
        points=award.points,
        cause=cause,
        note=award.note + (f", tier {tier}" if tier else ""),
        expires_at=expires_at,
    )


def _reverse(
    session: Session, *, order: Order, customer_id: int, cause: str, wanted: int | None, note: str
) -> LedgerChange | None:
    """Reverse ``wanted`` points of the order's award (None: all that remain), capped so neither
    the order nor the balance goes below zero. Nothing when the order earned nothing."""
    if session.scalar(select(Ledger.id).where(Ledger.cause == cause)) is not None:
        return None
    _lock_customer(session, customer_id)
    if _award_points(session, order.id) is None:
        return None
    # Points already expired or spent cannot be taken back twice: the balance caps it too.
    remaining = min(points_for_order(session, order.id), balance(session, customer_id))
    points = remaining if wanted is None else min(wanted, remaining)
    if points <= 0:
        return None
    return _append(
        session,
        customer_id=customer_id,
        order_id=order.id,
        kind=LedgerKind.REVERSAL,
        points=-points,
        cause=cause,
        note=note,
    )


def reverse_refund(
    session: Session, *, order: Order, customer_id: int, refund: Refund, config: LoyaltyConfig
) -> LedgerChange | None:
    """Reverse the share of the award that ``refund`` is of the order's total.

    Rounded by the configured rule; a refund that brings the order's refunded amount to its
    total (or beyond) reverses whatever remains, so a fully refunded order ends at zero.
    """
    award = _award_points(session, order.id)
    if award is None:
        return None
    fully_refunded = order.total <= 0 or max(refund.amount, order.refunded_amount) >= order.total
    wanted = (
        None
        if fully_refunded
        else round_points(Decimal(award) * refund.amount / order.total, config.earning.rounding)
    )
    return _reverse(
        session,
        order=order,
        customer_id=customer_id,
        cause=f"reversal:refund:{order.id}:{refund.external_id}",
        wanted=wanted,
        note=f"refund {refund.external_id}: {refund.amount} {refund.currency} of {order.total}",
    )


def apply_event(
    session: Session,
    *,
    event: CanonicalEvent,
    order: Order | None,
    customer: Customer,
    config: LoyaltyConfig,
) -> LedgerChange | None:
    """Apply one canonical event to the ledger, inside the caller's transaction.

    ``order`` is the stored order after the caller applied the event to it (None for events
    that are not about an order), ``customer`` its stored customer. Effects:

    - ``order.paid`` (or any order event once the order has ``paid_at``): award once, earned
      at ``paid_at`` (else the event's time), which starts its expiry clock; nothing when
      the order is cancelled or in another currency than ``shop_currency``;
    - ``order.refunded``: reverse in proportion to the refund (per refund id); without refund
      detail and with ``financial_status`` "refunded", reverse the remainder;
    - ``order.cancelled`` (or any order event once ``cancelled_at`` is set): reverse the
      remainder of an award; a cancelled order that was never paid earns nothing.

    Returns the row written, or None when the event changes nothing (including duplicates).
    """
    if order is None:
        return None
    if order.cancelled_at is not None or event.type is EventType.ORDER_CANCELLED:
        return _reverse(
            session,
            order=order,
            customer_id=customer.id,
            cause=f"reversal:cancel:{order.id}",
            wanted=None,
            note="order cancelled",
        )
    if event.type is EventType.ORDER_REFUNDED:
        if event.refund is not None:
            return reverse_refund(
                session, order=order, customer_id=customer.id, refund=event.refund, config=config
            )
        if (order.financial_status or "").lower() == "refunded":
            return _reverse(
                session,
                order=order,
                customer_id=customer.id,
                cause=f"reversal:refunded:{order.id}",
                wanted=None,
                note="order refunded",
            )
        return None
    if event.type is EventType.ORDER_PAID or order.paid_at is not None:
        paid_at = order.paid_at or event.occurred_at
        return award_order(
            session, order=order, customer_id=customer.id, config=config, paid_at=paid_at
        )
    return None


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
    _lock_customer(session, customer_id)
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
