"""Spending points on a reward: one ledger debit and one single-use code (invariant 8).

A redemption happens in three steps, so no network call is made while a transaction is open:

1. ``reserve`` (one transaction, the customer's row locked): the idempotency key is looked up
   and, when new, the balance and tier are checked, a ``redemptions`` row is written in
   ``pending`` with the code it will get, and the ledger is debited (cause
   ``redemption:<id>``). A pool code is claimed in this same transaction, so a pool
   redemption is ``issued`` at once.
2. ``issue``: the platform is asked to create that code. Transient errors are retried a few
   times; a timeout is retried too, since asking again for the same code either creates it or
   is refused as a duplicate, which ``find`` confirms.
3. ``settle`` (one transaction): ``issued`` with the platform's id, or, on a definite refusal,
   ``refunded`` with a credit row (cause ``redemption_refund:<id>``). Still failing
   transiently: it stays ``pending`` for ``complete_pending`` (the loyalty maintenance DAG).

Hence: a debit always ends with its code or its refund, never both and never two codes; the
same key again returns the same redemption (and its code). This module holds the steps that
write (1 and 3); ``redeemer`` asks the platform and runs the three in order.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.exceptions import InvalidInput
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import _append, balance
from postpurchase.rewards.platforms import IssuedCode
from postpurchase.rewards.pool_codes import claim_pool_code
from postpurchase.store.models import (
    Customer,
    CustomerTier,
    LedgerKind,
    Redemption,
    RedemptionStatus,
)

POOL = "pool"
# No 0/O, 1/I/L: codes are read off emails and typed at a till.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class NotEnoughPoints(InvalidInput):
    """The balance is below the reward's cost."""


class RewardUnavailable(InvalidInput):
    """Unknown reward, another tier's reward, or no pool code left."""


def new_code(prefix: str) -> str:
    """A random code such as ``PP-7KQ9-MX4T-2B``: 50 bits, unguessable and easy to type."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{prefix}-{body[:4]}-{body[4:8]}-{body[8:]}"


@dataclass(frozen=True)
class RedemptionView:
    """A redemption as callers show it (CLI, rewards page, storefront API)."""

    id: int
    key: str
    reward: str
    points: int
    code: str | None  # None until the platform confirmed it (or when refunded)
    status: RedemptionStatus
    expires_at: datetime
    order_id: int | None
    error: str | None

    @classmethod
    def of(cls, row: Redemption) -> RedemptionView:
        shown = row.status in (
            RedemptionStatus.ISSUED,
            RedemptionStatus.USED,
            RedemptionStatus.EXPIRED,
        )
        return cls(
            row.id,
            row.idempotency_key,
            row.reward,
            row.points,
            row.code if shown else None,
            row.status,
            row.expires_at,
            row.order_id,
            row.last_error,
        )


def lock_customer(session: Session, customer_id: int) -> None:
    # Serialises spending per customer on PostgreSQL; a SQLite write transaction already
    # holds the database's single write lock (BEGIN IMMEDIATE).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())


def reserve(
    session: Session,
    *,
    customer: Customer,
    reward_name: str,
    key: str,
    config: LoyaltyConfig,
    platform: str,
    now: datetime,
    code_prefix: str = "PP",
    gift: bool = False,
) -> tuple[Redemption, bool]:
    """Step 1, in the caller's transaction: the redemption for ``key``, and whether it is new.

    A key already used returns its redemption unchanged (InvalidInput if it was for another
    customer or reward). Else NotEnoughPoints, RewardUnavailable, or a new redemption with
    its debit written. A ``gift`` (a tier's welcome reward) costs no points and ignores the
    reward's tier limit.
    """
    lock_customer(session, customer.id)
    existing = session.scalars(select(Redemption).where(Redemption.idempotency_key == key)).first()
    if existing is not None:
        if existing.customer_id != customer.id or existing.reward != reward_name:
            raise InvalidInput(f"key {key!r} was used for another redemption")
        return existing, False
    reward = config.reward(reward_name)
    if reward is None:
        known = ", ".join(r.name for r in config.rewards) or "none configured"
        raise RewardUnavailable(f"REWARD: no reward {reward_name!r} ({known})")
    tier = session.scalar(select(CustomerTier.tier).where(CustomerTier.customer_id == customer.id))
    if not gift and not reward.allowed_for(tier):
        raise RewardUnavailable(
            f"{reward.name} is for tier(s) {', '.join(reward.tiers)}; the customer is "
            f"{tier or config.tiers.base.name}"
        )
    points = balance(session, customer.id)
    cost = 0 if gift else reward.points
    if points < cost:
        raise NotEnoughPoints(f"{reward.name} costs {reward.points} points; balance is {points}")
    pool_code = claim_pool_code(session, reward.name) if platform == POOL else None
    if platform == POOL and pool_code is None:
        raise RewardUnavailable(f"no pool codes left for {reward.name}: import more")
    row = Redemption(
        idempotency_key=key,
        customer_id=customer.id,
        reward=reward.name,
        title=reward.title,
        description=reward.describe(config.shop_currency)[:255],
        points=cost,
        platform=platform,
        code=pool_code.code if pool_code else new_code(code_prefix),
        status=RedemptionStatus.ISSUED if pool_code else RedemptionStatus.PENDING,
        issued_at=now if pool_code else None,
        expires_at=now + timedelta(days=reward.valid_days),
        created_at=now,
    )
    session.add(row)
    session.flush()
    if pool_code is not None:
        pool_code.redemption_id = row.id
    if cost == 0:
        return row, True
    _append(
        session,
        customer_id=customer.id,
        order_id=None,
        kind=LedgerKind.REDEMPTION,
        points=-reward.points,
        cause=f"redemption:{row.id}",
        note=f"{reward.name}: {reward.title}",
        balance_before=points,
    )
    return row, True


def refund(session: Session, row: Redemption, *, status: RedemptionStatus, why: str) -> None:
    """Give a redemption's points back once (cause ``redemption_refund:<id>``)."""
    row.status = status
    row.last_error = why[:1000]
    if row.points == 0:  # a gift: nothing was debited
        return
    _append(
        session,
        customer_id=row.customer_id,
        order_id=None,
        kind=LedgerKind.REDEMPTION_REFUND,
        points=row.points,
        cause=f"redemption_refund:{row.id}",
        note=f"{row.reward}: {why}"[:1000],
    )


@dataclass(frozen=True)
class Outcome:
    """What asking the platform came to: a code, a definite refusal, or still unknown."""

    issued: IssuedCode | None = None
    refused: str | None = None
    pending: str | None = None


def settle(session: Session, redemption_id: int, outcome: Outcome, *, now: datetime) -> Redemption:
    """Step 3, in the caller's transaction: record ``outcome`` on a still pending redemption.

    A redemption settled meanwhile (a retry, the recovery step) is left as it is.
    """
    query = select(Redemption).where(Redemption.id == redemption_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalars(query).one()
    if row.status is not RedemptionStatus.PENDING:
        return row
    row.attempts += 1
    if outcome.issued is not None:
        row.status = RedemptionStatus.ISSUED
        row.platform_ref = outcome.issued.platform_ref
        row.issued_at = now
        row.last_error = None
    elif outcome.refused is not None:
        refund(session, row, status=RedemptionStatus.REFUNDED, why=outcome.refused)
    else:
        row.last_error = (outcome.pending or "")[:1000]
    return row


def held_codes(session: Session, customer_id: int) -> list[RedemptionView]:
    """The customer's redemptions, newest first."""
    rows = session.scalars(
        select(Redemption)
        .where(Redemption.customer_id == customer_id)
        .order_by(Redemption.id.desc())
    )
    return [RedemptionView.of(row) for row in rows]
