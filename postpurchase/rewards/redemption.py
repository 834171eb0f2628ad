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
same key again returns the same redemption (and its code).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postpurchase.exceptions import (
    InvalidInput,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcome,
)
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import _append, balance
from postpurchase.rewards.catalogue import Reward
from postpurchase.rewards.platforms import CodeIssuer, CodeRequest, CodeTaken, IssuedCode
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import (
    Customer,
    CustomerTier,
    LedgerKind,
    PoolCode,
    Redemption,
    RedemptionStatus,
)
from postpurchase.store.statements import insert_ignoring_conflicts

log = logging.getLogger(__name__)

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


def _claim_pool_code(session: Session, reward: str) -> PoolCode | None:
    query = (
        select(PoolCode)
        .where(PoolCode.reward == reward, PoolCode.redemption_id.is_(None))
        .order_by(PoolCode.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Other customers' redemptions claim from the same pool at the same time.
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()


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
    pool_code = _claim_pool_code(session, reward.name) if platform == POOL else None
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


def ask_platform(
    issuer: CodeIssuer,
    request: CodeRequest,
    *,
    attempts: int,
    max_wait: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Step 2: create ``request.code`` on the platform, retrying what can be retried."""
    delay = 0.2
    last = ""
    for attempt in range(attempts):
        if attempt:
            sleep(delay)
            delay = min(delay * 2, max_wait)
        try:
            return Outcome(issued=issuer.create(request))
        except CodeTaken:
            # Ours from an earlier attempt that got through (the code is random and stored
            # before the first ask): confirm and keep it.
            try:
                found = issuer.find(request.code)
            except ProviderError as exc:
                last = str(exc)
                continue
            if found is not None:
                return Outcome(issued=found)
            last = "the platform says the code exists but cannot find it"
        except TransientProviderError as exc:
            last = str(exc)
            if exc.retry_after is not None:
                delay = min(exc.retry_after, max_wait)
        except UnknownOutcome as exc:
            last = str(exc)
        except PermanentProviderError as exc:
            return Outcome(refused=str(exc))
    return Outcome(pending=last or "not issued")


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


def code_request(row: Redemption, customer: Customer, reward: Reward, currency: str) -> CodeRequest:
    return CodeRequest(
        code=row.code,
        reward=reward,
        currency=currency,
        customer_email=customer.email,
        customer_platform_id=customer.external_id if customer.source == "shopify" else None,
        starts_at=row.created_at,
        ends_at=row.expires_at,
    )


@dataclass
class Redeemer:
    """Redeems rewards against one store and one platform (``issuer`` None: the code pool)."""

    store: SessionFactory
    config: LoyaltyConfig
    issuer: CodeIssuer | None
    code_prefix: str = "PP"
    attempts: int = 3
    max_wait: float = 2.0  # a customer is waiting: longer waits are left to recovery
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep

    @property
    def platform(self) -> str:
        return self.issuer.platform if self.issuer is not None else POOL

    def redeem(self, customer_id: int, reward_name: str, key: str) -> RedemptionView:
        """Spend points on ``reward_name`` once per ``key``; see the module doc.

        Returns the redemption: ``issued`` with its code, ``refunded`` when the platform
        refused (points back), or ``pending`` when the platform could not be reached yet
        (the same key later returns the code). NotEnoughPoints, RewardUnavailable or
        InvalidInput (a key reused for something else) change nothing.
        """
        if not key or len(key) > 128:
            raise InvalidInput("key: give 1 to 128 characters")
        now = self.clock()
        try:
            with transaction(self.store) as session:
                customer = session.get(Customer, customer_id)
                if customer is None:
                    raise InvalidInput(f"no customer {customer_id}")
                row, _ = reserve(
                    session,
                    customer=customer,
                    reward_name=reward_name,
                    key=key,
                    config=self.config,
                    platform=self.platform,
                    now=now,
                    code_prefix=self.code_prefix,
                )
                # Read what the platform call needs now, in the transaction that wrote it:
                # no second transaction before the call.
                view, request = RedemptionView.of(row), self._request(row, customer)
        except IntegrityError:
            # The same key, written meanwhile by a request for another customer (ours would
            # have waited on the customer's lock): read it.
            with transaction(self.store) as session:
                found = session.scalars(
                    select(Redemption).where(Redemption.idempotency_key == key)
                ).first()
                if found is None:
                    raise
                if found.customer_id != customer_id or found.reward != reward_name:
                    raise InvalidInput(f"key {key!r} was used for another redemption") from None
                view = RedemptionView.of(found)
                request = self._request(found, session.get_one(Customer, found.customer_id))
        if view.status is RedemptionStatus.PENDING:
            return self._ask_and_settle(view.id, request, attempts=self.attempts)
        return view

    def _request(self, row: Redemption, customer: Customer) -> CodeRequest | None:
        reward = self.config.reward(row.reward)
        if reward is None or row.status is not RedemptionStatus.PENDING:
            return None
        return code_request(row, customer, reward, self.config.shop_currency)

    def close(self) -> None:
        if self.issuer is not None:
            self.issuer.close()

    def view(self, redemption_id: int) -> RedemptionView:
        with transaction(self.store) as session:
            return RedemptionView.of(session.get_one(Redemption, redemption_id))

    def complete(self, redemption_id: int, *, attempts: int | None = None) -> RedemptionView:
        """Steps 2 and 3 for a pending redemption (safe to run again, and concurrently)."""
        with transaction(self.store) as session:
            row = session.get_one(Redemption, redemption_id)
            if row.status is not RedemptionStatus.PENDING:
                return RedemptionView.of(row)
            request = self._request(row, session.get_one(Customer, row.customer_id))
        return self._ask_and_settle(redemption_id, request, attempts=attempts or self.attempts)

    def _ask_and_settle(
        self, redemption_id: int, request: CodeRequest | None, *, attempts: int
    ) -> RedemptionView:
        if request is None:
            outcome = Outcome(refused="the reward is no longer in the catalogue")
        elif self.issuer is None:
            outcome = Outcome(refused="a pending redemption without a platform to ask")
        else:
            outcome = ask_platform(
                self.issuer,
                request,
                attempts=attempts,
                max_wait=self.max_wait,
                sleep=self.sleep,
            )
        with transaction(self.store) as session:
            settled = settle(session, redemption_id, outcome, now=self.clock())
            if settled.status is RedemptionStatus.PENDING:
                log.warning("redemption %s still pending: %s", redemption_id, outcome.pending)
            return RedemptionView.of(settled)


def held_codes(session: Session, customer_id: int) -> list[RedemptionView]:
    """The customer's redemptions, newest first."""
    rows = session.scalars(
        select(Redemption)
        .where(Redemption.customer_id == customer_id)
        .order_by(Redemption.id.desc())
    )
    return [RedemptionView.of(row) for row in rows]


def import_pool_codes(session: Session, reward: str, codes: list[str]) -> int:
    """Add codes to ``reward``'s pool; codes already imported are skipped. The count added."""
    cleaned = sorted({c.strip() for c in codes if c.strip()})
    too_long = [c for c in cleaned if len(c) > 64]
    if too_long:
        raise InvalidInput(f"codes longer than 64 characters: {', '.join(too_long[:3])}")
    rows = [{"reward": reward, "code": code} for code in cleaned]
    return insert_ignoring_conflicts(session, PoolCode, rows) if rows else 0


def free_pool_codes(session: Session, reward: str) -> int:
    """How many of ``reward``'s pool codes are still to be handed out."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(PoolCode)
            .where(PoolCode.reward == reward, PoolCode.redemption_id.is_(None))
        )
        or 0
    )
