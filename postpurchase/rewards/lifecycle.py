"""After a code is issued: pending redemptions completed, codes used on orders, codes expired.

- ``complete_pending``: redemptions left ``pending`` (the platform was unreachable, or the
  process died between the debit and the code) are asked for again; a definite refusal
  refunds them. One that stays unreachable past ``give_up_after`` is refunded only if the
  platform confirms the code does not exist.
- ``mark_used``: an order that carries a redemption's code marks it ``used`` with that order
  (codes compared without case: WooCommerce lower-cases them).
- ``expire_codes``: ``issued`` codes past ``expires_at`` become ``expired``; the reward's
  ``refund_on_expiry`` gives the points back (once: cause ``redemption_refund:<id>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from postpurchase.exceptions import ProviderError
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.rewards.redeemer import Redeemer
from postpurchase.rewards.redemption import Outcome, RedemptionView, refund, settle
from postpurchase.store.database import transaction
from postpurchase.store.membership import among, among_parameter, rows_among
from postpurchase.store.models import Customer, Order, Redemption, RedemptionStatus


@dataclass(frozen=True)
class PendingResult:
    issued: int = 0
    refunded: int = 0
    still_pending: int = 0

    def __str__(self) -> str:
        return (
            f"pending redemptions: {self.issued} issued, {self.refunded} refunded, "
            f"{self.still_pending} still pending"
        )


def complete_pending(
    redeemer: Redeemer,
    *,
    now: datetime,
    older_than: timedelta = timedelta(minutes=2),
    give_up_after: timedelta = timedelta(hours=24),
) -> PendingResult:
    """Complete or refund the redemptions pending since before ``now - older_than`` (younger
    ones may still be in the hands of the request that made them). Safe to run twice."""
    with transaction(redeemer.store) as session:
        pending = session.execute(
            select(Redemption.id, Redemption.created_at)
            .where(
                Redemption.status == RedemptionStatus.PENDING,
                Redemption.created_at <= now - older_than,
            )
            .order_by(Redemption.id)
        ).all()
    issued = refunded = still = 0
    for redemption_id, created_at in pending:
        view = redeemer.complete(redemption_id)
        if view.status is RedemptionStatus.PENDING and created_at <= now - give_up_after:
            view = _give_up(redeemer, redemption_id, now=now)
        if view.status is RedemptionStatus.ISSUED:
            issued += 1
        elif view.status is RedemptionStatus.REFUNDED:
            refunded += 1
        else:
            still += 1
    return PendingResult(issued, refunded, still)


def _give_up(redeemer: Redeemer, redemption_id: int, *, now: datetime) -> RedemptionView:
    with transaction(redeemer.store) as session:
        code = session.get_one(Redemption, redemption_id).code
    try:
        found = redeemer.issuer.find(code) if redeemer.issuer is not None else None
    except ProviderError:
        # Cannot tell whether the code exists: refunding now could leave a free code behind.
        return redeemer.view(redemption_id)
    outcome = (
        Outcome(issued=found)
        if found is not None
        else Outcome(refused="the platform could not be reached for a day; the code was never made")
    )
    with transaction(redeemer.store) as session:
        return settle(session, redemption_id, outcome, now=now)


_USABLE = (RedemptionStatus.ISSUED, RedemptionStatus.PENDING, RedemptionStatus.EXPIRED)


def mark_used(session: Session, uses: Iterable[tuple[int, Sequence[str], datetime]]) -> int:
    """Mark redemptions used by orders: ``(order id, codes on it, when)``. Returns how many
    changed; a code already used, not one of ours, or of a customer of another shop than the
    order's changes nothing. An earlier order of ``uses`` takes a code before a later one."""
    # An order's every event in a batch names the same codes: only its first use can change
    # anything (see ``done`` below), so the codes of the others are not even upper-cased.
    wanted = []
    seen: set[tuple[int, tuple[str, ...]]] = set()
    for order_id, codes, at in uses:
        given = (order_id, tuple(codes))
        if given not in seen:
            seen.add(given)
            wanted.append((order_id, _upper(codes), at))
    # Most codes on orders are the shop's own discounts, not redemptions: one lookup of them
    # all first, so the orders without one of ours cost no statement each.
    ours = _usable_codes(session, {code for _, codes, _ in wanted for code in codes})
    changed = 0
    # An order's every event in a batch names its codes: once its update has run, the same
    # one again finds its codes taken (by it) and changes nothing.
    done: set[tuple[int, tuple[str, ...]]] = set()
    for order_id, codes, at in wanted:
        if ours.isdisjoint(codes) or (order_id, tuple(codes)) in done:
            continue
        done.add((order_id, tuple(codes)))
        result = session.execute(
            update(Redemption)
            .where(
                func.upper(Redemption.code).in_(codes),
                Redemption.status.in_(_USABLE),
                Redemption.order_id.is_(None),
                # the code's customer is of the order's shop
                select(Customer.id)
                .join(Order, Order.shop == Customer.shop)
                .where(Customer.id == Redemption.customer_id, Order.id == order_id)
                .exists(),
            )
            .values(status=RedemptionStatus.USED, order_id=order_id, used_at=at)
            .execution_options(synchronize_session=False)
        )
        changed += cast(CursorResult[Any], result).rowcount or 0
    return changed


def _upper(codes: Sequence[str]) -> list[str]:
    """An order's codes as redemptions are matched on: stripped, upper-cased, once each."""
    return sorted({c.strip().upper() for c in codes if c and c.strip()})


def _usable_codes(session: Session, codes: set[str]) -> set[str]:
    """Which of ``codes`` (upper-cased) are codes of redemptions an order may still use,
    upper-cased by the database as ``mark_used`` compares them (``ix_redemptions_upper_code``)."""
    if not codes:
        return set()
    wanted = sorted(codes)
    found = rows_among(
        session,
        _CODES,
        lambda statement: statement.where(among(session, _UPPER_CODE, wanted)),
        _PG_CODES,
        {"codes": wanted},
    )
    # PostgreSQL's rows (``rows_among``) give the status as its string: a StrEnum member
    # equals it
    return {code for code, status, order_id in found if status in _USABLE and order_id is None}


_UPPER_CODE = func.upper(Redemption.code, type_=Redemption.code.type)
# Only the codes in the condition, the rest checked by ``_usable_codes``: on a table without
# statistics a status condition took the status index, through every issued redemption.
_CODES = select(_UPPER_CODE, Redemption.status, Redemption.order_id)
# Built once and run by psycopg (``driver_statements``) on PostgreSQL: it runs for every batch
# of orders with codes.
_PG_CODES = _CODES.where(among_parameter("postgresql", _UPPER_CODE, "codes"))


@dataclass(frozen=True)
class ExpiryResult:
    expired: int
    refunded_points: int

    def __str__(self) -> str:
        return f"codes expired: {self.expired} ({self.refunded_points} point(s) given back)"


def expire_codes(session: Session, *, config: LoyaltyConfig, now: datetime) -> ExpiryResult:
    """Expire issued codes past their end; refund those whose reward says so."""
    query = select(Redemption).where(
        Redemption.status == RedemptionStatus.ISSUED, Redemption.expires_at <= now
    )
    if session.get_bind().dialect.name == "postgresql":
        # An order using the code may be processed at the same moment: one of them waits.
        query = query.with_for_update(skip_locked=True)
    expired = points = 0
    for row in session.scalars(query):
        reward = config.reward(row.reward)
        expired += 1
        if reward is not None and reward.refund_on_expiry:
            refund(session, row, status=RedemptionStatus.EXPIRED, why="code expired unused")
            points += row.points
        else:
            row.status = RedemptionStatus.EXPIRED
    return ExpiryResult(expired, points)
