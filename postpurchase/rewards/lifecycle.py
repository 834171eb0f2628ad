"""After a code is issued: pending redemptions completed, codes expired (codes used on orders:
``postpurchase.rewards.used_codes``).

- ``complete_pending``: redemptions left ``pending`` (the platform was unreachable, or the
  process died between the debit and the code) are asked for again; a definite refusal
  refunds them. One that stays unreachable past ``give_up_after`` is refunded only if the
  platform confirms the code does not exist.
- ``expire_codes``: ``issued`` codes past ``expires_at`` become ``expired``; the reward's
  ``refund_on_expiry`` gives the points back (once: cause ``redemption_refund:<id>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.exceptions import ProviderError
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.rewards.redeemer import Redeemer
from postpurchase.rewards.redemption import Outcome, RedemptionView, refund, settle
from postpurchase.store.database import transaction
from postpurchase.store.models import Redemption, RedemptionStatus


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
