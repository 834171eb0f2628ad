"""Points expiry, in set-based SQL (one INSERT ... SELECT per run, whatever the customer count).

``after_earned``: an award's points, net of that order's reversals, expire at the award's
``expires_at``. Points a customer spent (negative adjustments, rewards net of refunds) count
against the oldest points first, so only unspent points expire: the customer's expired total
becomes ``max(0, due - spent)``, and each run writes the part not yet expired, never more than the
balance. Cause ``expiry:earned:<customer id>:<run date>``: one row per customer and day.

``after_inactivity``: a customer whose last paid, non-cancelled order is ``months`` old or
older loses the whole balance. Cause ``expiry:inactive:<customer id>:<last order's paid_at>``,
so it happens once per period of inactivity. Customers with no order (adjustments only) keep
their points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, and_, case, cast, func, literal, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from postpurchase.loyalty.config import ExpiryMode, LoyaltyConfig
from postpurchase.loyalty.earning import add_months
from postpurchase.loyalty.ledger import Ledger, ledger_insert
from postpurchase.store.columns import UtcDateTime
from postpurchase.store.models import LedgerKind, Order


@dataclass(frozen=True)
class ExpiryResult:
    customers: int
    points: int

    def __str__(self) -> str:
        return f"expired {self.points} point(s) of {self.customers} customer(s)"


def _least(a: ColumnElement[int], b: ColumnElement[int]) -> ColumnElement[int]:
    # LEAST() is PostgreSQL only and SQLite's two-argument min() is SQLite only.
    return case((a < b, a), else_=b)


def _expire_earned(session: Session, now: datetime, months: int) -> None:
    order_net = (
        select(Ledger.order_id, func.sum(Ledger.points).label("net"))
        .where(
            Ledger.order_id.is_not(None),
            Ledger.kind.in_([LedgerKind.AWARD, LedgerKind.REVERSAL]),
        )
        .group_by(Ledger.order_id)
        .subquery()
    )
    due = (
        select(Ledger.customer_id, func.sum(order_net.c.net).label("due"))
        .join(order_net, order_net.c.order_id == Ledger.order_id)
        .where(Ledger.kind == LedgerKind.AWARD, Ledger.expires_at <= now)
        .group_by(Ledger.customer_id)
        .subquery()
    )
    spent_or_expired = case(
        (and_(Ledger.kind == LedgerKind.ADJUSTMENT, Ledger.points < 0), -Ledger.points),
        (Ledger.kind == LedgerKind.EXPIRY, -Ledger.points),
        # Points spent on rewards, less what came back from refused or expired codes.
        (Ledger.kind.in_([LedgerKind.REDEMPTION, LedgerKind.REDEMPTION_REFUND]), -Ledger.points),
        else_=0,
    )
    account = (
        select(
            Ledger.customer_id,
            func.sum(Ledger.points).label("balance"),
            func.sum(spent_or_expired).label("used"),
        )
        .group_by(Ledger.customer_id)
        .subquery()
    )
    amount = _least(due.c.due - account.c.used, account.c.balance)
    candidates = (
        select(account.c.customer_id, amount.label("amount"))
        .join(due, due.c.customer_id == account.c.customer_id)
        .subquery()
    )
    day = now.strftime("%Y-%m-%d")
    rows = select(
        candidates.c.customer_id,
        literal(None).label("order_id"),
        literal(LedgerKind.EXPIRY.value).label("kind"),
        (-candidates.c.amount).label("points"),
        (literal("expiry:earned:") + cast(candidates.c.customer_id, String) + f":{day}").label(
            "cause"
        ),
        literal(f"earned {months}+ month(s) ago").label("note"),
        literal(now, UtcDateTime()).label("created_at"),
    ).where(candidates.c.amount > 0)
    session.execute(
        ledger_insert(session).from_select(
            ["customer_id", "order_id", "kind", "points", "cause", "note", "created_at"], rows
        )
    )


def _expire_inactive(session: Session, now: datetime, months: int) -> None:
    last_paid = (
        select(Order.customer_id, func.max(Order.paid_at).label("last_paid"))
        .where(Order.paid_at.is_not(None), Order.cancelled_at.is_(None))
        .group_by(Order.customer_id)
        .subquery()
    )
    account = (
        select(Ledger.customer_id, func.sum(Ledger.points).label("balance"))
        .group_by(Ledger.customer_id)
        .subquery()
    )
    rows = (
        select(
            account.c.customer_id,
            literal(None).label("order_id"),
            literal(LedgerKind.EXPIRY.value).label("kind"),
            (-account.c.balance).label("points"),
            (
                literal("expiry:inactive:")
                + cast(account.c.customer_id, String)
                + ":"
                + cast(last_paid.c.last_paid, String)
            ).label("cause"),
            literal(f"no purchase for {months} month(s)").label("note"),
            literal(now, UtcDateTime()).label("created_at"),
        )
        .join(last_paid, last_paid.c.customer_id == account.c.customer_id)
        .where(account.c.balance > 0, last_paid.c.last_paid <= add_months(now, -months))
    )
    session.execute(
        ledger_insert(session).from_select(
            ["customer_id", "order_id", "kind", "points", "cause", "note", "created_at"], rows
        )
    )


def expire_points(session: Session, *, config: LoyaltyConfig, now: datetime) -> ExpiryResult:
    """Write the expiry rows due at ``now`` (idempotent: a second run the same day adds none).

    Returns how many customers lost how many points in this run.
    """
    mode, months = config.expiry.mode, config.expiry.months
    if mode is ExpiryMode.NEVER or months is None:
        return ExpiryResult(0, 0)
    if session.get_bind().dialect.name == "postgresql":
        # Expiry reads every balance, then writes: no ledger writer may slip in between and
        # spend points this run is about to expire. (SQLite has a single writer anyway.)
        session.execute(text("LOCK TABLE loyalty_ledger IN SHARE ROW EXCLUSIVE MODE"))
    before = session.scalar(select(func.max(Ledger.id))) or 0
    if mode is ExpiryMode.AFTER_EARNED:
        _expire_earned(session, now, months)
    else:
        _expire_inactive(session, now, months)
    customers, points = session.execute(
        select(func.count(), func.coalesce(func.sum(-Ledger.points), 0)).where(
            Ledger.id > before, Ledger.kind == LedgerKind.EXPIRY
        )
    ).one()
    return ExpiryResult(int(customers), int(points))
