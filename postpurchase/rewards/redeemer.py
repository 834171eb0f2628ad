"""The redeemer: runs a redemption's three steps (see ``redemption``) against one store and
one platform, asking the platform with no transaction open and retrying what can be retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, select
from sqlalchemy.exc import IntegrityError

from postpurchase.exceptions import (
    InvalidInput,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcome,
)
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.reward_catalogue import Reward
from postpurchase.rewards.platforms import CodeIssuer, CodeRequest, CodeTaken
from postpurchase.rewards.redemption import (
    POOL,
    Contact,
    CustomerRef,
    Outcome,
    RedemptionView,
    lock_contact,
    lock_customer,
    record_issued,
    reserve,
    reserve_at_once,
    settle,
)
from postpurchase.store.database import SessionFactory, engine_of, transaction
from postpurchase.store.models import Customer, Redemption, RedemptionStatus

log = logging.getLogger(__name__)


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


def code_request(
    row: Redemption | Row[Any],
    customer: Customer | Row[Any] | Contact,
    reward: Reward,
    currency: str,
) -> CodeRequest:
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

    def redeem(
        self,
        customer: int | CustomerRef,
        reward_name: str,
        key: str,
        *,
        key_scope: str | None = None,
    ) -> RedemptionView:
        """Spend points on ``reward_name`` once per ``key``; see the module doc.

        ``customer``: an id, or the platform's id as a storefront gives it (found and locked
        by one statement of the transaction that spends). ``key_scope``: the key is made the
        customer's own, ``<scope>:<customer id>:<key>``, for a caller that does not know the
        id yet.

        Returns the redemption: ``issued`` with its code, ``refunded`` when the platform
        refused (points back), or ``pending`` when the platform could not be reached yet (the
        same key later returns the code). NotEnoughPoints, RewardUnavailable, UnknownCustomer,
        AmbiguousCustomer or InvalidInput (a key reused for something else) change nothing.
        """
        now = self.clock()
        customer_id = customer if isinstance(customer, int) else None
        try:
            if self.issuer is not None and self._engine.dialect.name == "postgresql":
                # The storefront's path: a core connection, two statements (see
                # ``reserve_at_once``).
                with self._engine.begin() as conn:
                    contact = lock_contact(conn, customer)
                    customer_id = contact.id
                    key = self._scoped(key, key_scope, customer_id)
                    found = reserve_at_once(
                        conn, customer=contact, key=key, **self._reserving(reward_name, now)
                    )
                    view, request = RedemptionView.of(found), self._request(found, contact)
            else:
                with transaction(self.store) as session:
                    locked = lock_customer(session, customer)
                    customer_id = locked.id
                    key = self._scoped(key, key_scope, customer_id)
                    row, _ = reserve(
                        session, customer=locked, key=key, **self._reserving(reward_name, now)
                    )
                    # Read what the platform call needs now, in the transaction that wrote
                    # it: no second transaction before the call.
                    view, request = RedemptionView.of(row), self._request(row, locked)
        except IntegrityError:
            # The same key, written meanwhile by a request for another customer (ours would
            # have waited on the customer's lock): read it.
            with transaction(self.store) as session:
                written = session.scalars(
                    select(Redemption).where(Redemption.idempotency_key == key)
                ).first()
                if written is None:
                    raise
                if written.customer_id != customer_id or written.reward != reward_name:
                    raise InvalidInput(f"key {key!r} was used for another redemption") from None
                view = RedemptionView.of(written)
                request = self._request(written, session.get_one(Customer, written.customer_id))
        if view.status is RedemptionStatus.PENDING:
            return self._ask_and_settle(view.id, request, attempts=self.attempts)
        return view

    def _reserving(self, reward_name: str, now: datetime) -> dict[str, Any]:
        """What both ways of reserving are given besides the customer and the key."""
        return {
            "reward_name": reward_name,
            "config": self.config,
            "platform": self.platform,
            "now": now,
            "code_prefix": self.code_prefix,
        }

    @property
    def _engine(self) -> Engine:
        return engine_of(self.store)

    @staticmethod
    def _scoped(key: str, scope: str | None, customer_id: int) -> str:
        if scope is not None:
            key = f"{scope}:{customer_id}:{key}"
        if not key or len(key) > 128:
            raise InvalidInput("key: give 1 to 128 characters")
        return key

    def _request(
        self, row: Redemption | Row[Any], customer: Customer | Row[Any] | Contact
    ) -> CodeRequest | None:
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
        if outcome.issued is not None:
            # The common case in one statement, without the ORM's session.
            issued = record_issued(self._engine, redemption_id, outcome.issued, now=self.clock())
            if issued is not None:
                return issued
        with transaction(self.store) as session:
            settled = settle(session, redemption_id, outcome, now=self.clock())
            if settled.status is RedemptionStatus.PENDING:
                log.warning("redemption %s still pending: %s", redemption_id, outcome.pending)
            return settled
