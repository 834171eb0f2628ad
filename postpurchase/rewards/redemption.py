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

On PostgreSQL, a platform's redemption (the storefront's) takes the short way through a core
connection: step 1 is the lock and one statement (``reserve_at_once``), the common step 3 one
statement in autocommit (``record_issued``), as round trips and statements are most of a
redemption's CPU.

Hence: a debit always ends with its code or its refund, never both and never two codes; the
same key again returns the same redemption (and its code). This module holds the steps that
write (1 and 3); ``redeemer`` asks the platform and runs the three in order.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from postpurchase.exceptions import InvalidInput
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import _append
from postpurchase.loyalty.reward_catalogue import Reward
from postpurchase.rewards.platforms import IssuedCode
from postpurchase.rewards.pool_codes import claim_pool_code
from postpurchase.store.driver_statements import fetch_all
from postpurchase.store.models import (
    Customer,
    CustomerTier,
    LedgerKind,
    LoyaltyLedgerEntry,
    Redemption,
    RedemptionStatus,
)

POOL = "pool"
_REDEMPTIONS = cast(Table, Redemption.__table__)
_LEDGER = cast(Table, LoyaltyLedgerEntry.__table__)
# No 0/O, 1/I/L: codes are read off emails and typed at a till.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODES = len(_ALPHABET) ** 10


class NotEnoughPoints(InvalidInput):
    """The balance is below the reward's cost."""


class RewardUnavailable(InvalidInput):
    """Unknown reward, another tier's reward, or no pool code left."""


def new_code(prefix: str) -> str:
    """A random code such as ``PP-7KQ9-MX4T-2B``: 50 bits, unguessable and easy to type."""
    # One draw of a 10-digit number in base 31, uniform as ten draws of a letter are, at a
    # tenth of their cost (a redemption's path makes one per code).
    number = secrets.randbelow(_CODES)
    digits = []
    for _ in range(10):
        number, digit = divmod(number, len(_ALPHABET))
        digits.append(_ALPHABET[digit])
    body = "".join(digits)
    return f"{prefix}-{body[:4]}-{body[4:8]}-{body[8:]}"


class _Viewed(NamedTuple):
    """The columns of a redemption that RedemptionView shows, read by the driver."""

    id: int
    idempotency_key: str
    reward: str
    points: int
    code: str
    status: RedemptionStatus
    expires_at: datetime
    order_id: int | None
    last_error: str | None


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
    def of(cls, row: Redemption | Row[Any] | _Viewed) -> RedemptionView:
        """From the ORM row, or a core row with the same column names."""
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


@dataclass(frozen=True)
class CustomerRef:
    """A customer as a storefront names them: platform, shop (None: the one shop the id is
    known in) and the platform's id."""

    source: str
    shop: str | None
    external_id: str


class UnknownCustomer(InvalidInput):
    """No customer by that id or platform id (a storefront customer with no order yet)."""


class AmbiguousCustomer(InvalidInput):
    """A platform id known in several shops, and no shop named."""


# The statements of a redemption are built once, here, with their values as bound parameters:
# building one per call (and its cache key, which SQLAlchemy keeps on the statement object)
# cost more client time than running it, several times per redemption. Each dict holds the
# plain and the ``FOR UPDATE`` form.
def _both(query: Select[Customer]) -> dict[bool, Select[Customer]]:
    return {False: query, True: query.with_for_update()}


def _by_lookup(query: Select[Any]) -> dict[str, Select[Any]]:
    """``query`` narrowed as each way of naming a customer needs (see ``_lookup``)."""
    by_ref = query.where(
        Customer.source == bindparam("source"), Customer.external_id == bindparam("ref")
    )
    return {
        "id": query.where(Customer.id == bindparam("id")),
        "ref": by_ref.order_by(Customer.shop).limit(10),
        "ref_in_shop": by_ref.where(Customer.shop == bindparam("shop"))
        .order_by(Customer.shop)
        .limit(10),
    }


_CUSTOMER = {kind: _both(query) for kind, query in _by_lookup(select(Customer)).items()}
# What a redemption reads of the customer it locks: who it is, and what the platform call
# needs. Not the whole row: the driver describes, and the ORM builds, every column selected.
_LOCKED_CONTACT = {
    kind: query.with_for_update()
    for kind, query in _by_lookup(
        cast(
            Select[Any],
            select(
                Customer.id, Customer.shop, Customer.source, Customer.external_id, Customer.email
            ),
        )
    ).items()
}
_STANDING = select(
    select(_REDEMPTIONS.c.id)
    .where(_REDEMPTIONS.c.idempotency_key == bindparam("key"))
    .scalar_subquery(),
    select(CustomerTier.tier)
    .where(CustomerTier.customer_id == bindparam("customer_id"))
    .scalar_subquery(),
    select(func.sum(LoyaltyLedgerEntry.points))
    .where(LoyaltyLedgerEntry.customer_id == bindparam("customer_id"))
    .scalar_subquery(),
)
# A core INSERT: the ORM's unit of work (identity map, flush) is not needed for a row that is
# written once and read back by its id.
_INSERT = insert(_REDEMPTIONS).returning(_REDEMPTIONS.c.id)
# ``reserve_at_once``'s statement (PostgreSQL: SQLite has no INSERT in WITH). ``standing`` is
# ``_STANDING`` read by the statement after the lock's (so it sees every debit committed
# before the lock was granted); ``new`` inserts the redemption only when the key is new, the
# tier may have the reward and the balance covers it, and ``debit`` writes its ledger row.
# Every part runs in the one snapshot; the row answers (key's redemption, tier, balance, new
# id or NULL).
_NEW_COLUMNS = (
    "idempotency_key",
    "customer_id",
    "reward",
    "title",
    "description",
    "points",
    "platform",
    "code",
    "status",
    "issued_at",
    "expires_at",
    "created_at",
    "attempts",
)
_STANDING_ROW = select(
    _STANDING.selected_columns[0].label("existing"),
    _STANDING.selected_columns[1].label("tier"),
    func.coalesce(_STANDING.selected_columns[2], 0).label("balance"),
).cte("standing")
_NEW = (
    insert(_REDEMPTIONS)
    .from_select(
        list(_NEW_COLUMNS),
        select(*[bindparam(name, type_=_REDEMPTIONS.c[name].type) for name in _NEW_COLUMNS]).where(
            _STANDING_ROW.c.existing.is_(None),
            _STANDING_ROW.c.balance >= bindparam("points"),
            or_(
                bindparam("any_tier"),
                _STANDING_ROW.c.tier == any_(bindparam("tiers", type_=ARRAY(String))),
            ),
        ),
    )
    .returning(_REDEMPTIONS.c.id)
    .cte("new")
)
_DEBIT = (
    insert(_LEDGER)
    .from_select(
        ["customer_id", "order_id", "kind", "points", "cause", "note"],
        select(
            bindparam("customer_id"),
            null(),
            bindparam("kind", type_=_LEDGER.c.kind.type),
            bindparam("debit"),
            literal("redemption:") + sql_cast(_NEW.c.id, String),
            bindparam("note"),
        ),
    )
    .returning(_LEDGER.c.id)
    .cte("debit")
)
_RESERVE = (
    select(_STANDING_ROW.c.existing, _STANDING_ROW.c.tier, _STANDING_ROW.c.balance, _NEW.c.id)
    .select_from(_STANDING_ROW.outerjoin(_NEW, true()))
    .add_cte(_DEBIT)
)
_BY_KEY = select(_REDEMPTIONS).where(_REDEMPTIONS.c.idempotency_key == bindparam("key"))
_BY_ID = select(_REDEMPTIONS).where(_REDEMPTIONS.c.id == bindparam("id"))
# The columns RedemptionView shows.
_VIEWED = [
    _REDEMPTIONS.c[name]
    for name in (
        "id",
        "idempotency_key",
        "reward",
        "points",
        "code",
        "status",
        "expires_at",
        "order_id",
        "last_error",
    )
]
# The common settle, in one statement: the WHERE on the status does what the row lock does in
# ``settle``'s other branches (a concurrent settle waits, then finds the row no longer pending).
_ISSUE = (
    update(_REDEMPTIONS)
    .where(
        _REDEMPTIONS.c.id == bindparam("redemption_id"),
        _REDEMPTIONS.c.status == RedemptionStatus.PENDING,
    )
    .values(
        status=RedemptionStatus.ISSUED,
        platform_ref=bindparam("ref"),
        issued_at=bindparam("now"),
        last_error=None,
        attempts=_REDEMPTIONS.c.attempts + 1,
    )
    .returning(*_VIEWED)
)
# ``record_issued``'s on PostgreSQL: its commit does not wait for the WAL to reach the disk
# (the flush cost the database about 0.15 ms of CPU per redemption; the WAL writer flushes
# within a fraction of a second). A crash in between loses only the mark: the redemption is
# pending again, with its debit and its code, and asking the platform again (``complete``,
# or a retry with the same key) finds that code and marks it once more. The debit's
# transaction still waits for the disk. ``set_config(..., true)`` lasts for this statement's
# own transaction only, so the connection goes back to the pool unchanged.
_ISSUE_NOT_WAITING = _ISSUE.returning(func.set_config("synchronous_commit", "off", true()))


def lock_customer(session: Session, who: int | CustomerRef) -> Customer:
    """The customer, locked for spending until the transaction ends.

    ``FOR UPDATE`` serialises spending per customer on PostgreSQL; a SQLite write transaction
    already holds the database's single write lock (BEGIN IMMEDIATE). UnknownCustomer, or
    AmbiguousCustomer for a ``CustomerRef`` without a shop that matches several."""
    return customer_for(session, who, lock=session.get_bind().dialect.name == "postgresql")


def _lookup(who: int | CustomerRef) -> tuple[str, dict[str, Any]]:
    if isinstance(who, int):
        return "id", {"id": who}
    if who.shop is None:
        return "ref", {"source": who.source, "ref": who.external_id}
    return "ref_in_shop", {"source": who.source, "ref": who.external_id, "shop": who.shop}


def _only(found: Sequence[Any], who: int | CustomerRef) -> Any:
    if not found:
        raise UnknownCustomer(f"no customer {who}")
    if len(found) > 1:
        shops = ", ".join(repr(customer.shop) for customer in found)
        raise AmbiguousCustomer(f"this customer id is known in several shops ({shops})")
    return found[0]


def customer_for(session: Session, who: int | CustomerRef, *, lock: bool = False) -> Customer:
    """The customer (``lock``: ``FOR UPDATE``); errors as ``lock_customer``."""
    kind, params = _lookup(who)
    found: Customer = _only(session.scalars(_CUSTOMER[kind][lock], params).all(), who)
    return found


class Contact(NamedTuple):
    """What ``lock_contact`` reads of a customer."""

    id: int
    shop: str | None
    source: str
    external_id: str
    email: str | None


def lock_contact(conn: Connection, who: int | CustomerRef) -> Contact:
    """``lock_customer`` on PostgreSQL, through a core connection (its statement run by the
    driver: ``driver_statements``)."""
    kind, params = _lookup(who)
    found: Contact = _only(
        [Contact(*row) for row in fetch_all(conn, _LOCKED_CONTACT[kind], params)], who
    )
    return found


def _standing(session: Session, customer_id: int, key: str) -> tuple[int | None, str | None, int]:
    """(id of the redemption already made with ``key``, tier, balance) in one statement.

    Not folded into ``lock_customer``'s statement: on PostgreSQL a statement that waited for a
    row lock computes the rest of its row from the snapshot it started with, which would miss
    the debit of the transaction it waited for."""
    row = session.execute(_STANDING, {"key": key, "customer_id": customer_id}).one()
    return row[0], row[1], int(row[2] or 0)


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

    ``customer``: as ``lock_customer`` returned it in this transaction (the lock is what keeps
    two redemptions from spending the same points).

    A key already used returns its redemption unchanged (InvalidInput if it was for another
    customer or reward). Else NotEnoughPoints, RewardUnavailable, or a new redemption with
    its debit written (as written: not attached to the session, so changing it writes
    nothing). A ``gift`` (a tier's welcome reward) costs no points and ignores the reward's
    tier limit.
    """
    existing_id, tier, points = _standing(session, customer.id, key)
    if existing_id is not None:
        existing = session.get_one(Redemption, existing_id)
        _same_redemption(existing, customer.id, reward_name, key)
        return existing, False
    reward = _reward(config, reward_name)
    cost = 0 if gift else reward.points
    if not gift and not reward.allowed_for(tier):
        raise _not_for_tier(config, reward, tier)
    if points < cost:
        raise _not_enough(reward, points)
    pool_code = claim_pool_code(session, reward.name) if platform == POOL else None
    if platform == POOL and pool_code is None:
        raise RewardUnavailable(f"no pool codes left for {reward.name}: import more")
    values = _new_values(
        customer.id,
        reward,
        key,
        config,
        platform,
        now,
        cost,
        pool_code.code if pool_code else new_code(code_prefix),
    )
    if pool_code is not None:
        values.update(status=RedemptionStatus.ISSUED, issued_at=now)
    row = Redemption(id=session.execute(_INSERT, values).scalar_one(), **values)
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
        note=_debit_note(reward),
        balance_before=points,
    )
    return row, True


def reserve_at_once(
    conn: Connection,
    *,
    customer: Contact,
    reward_name: str,
    key: str,
    config: LoyaltyConfig,
    platform: str,
    now: datetime,
    code_prefix: str = "PP",
) -> Redemption | Row[Any]:
    """``reserve`` of a platform's code (not a pool's, not a gift) on PostgreSQL, in one
    statement of the caller's transaction (``_RESERVE``): the redemption for ``key``, new or
    as it was. ``customer``: as ``lock_contact`` returned it in this transaction.

    Errors as ``reserve``. Two statements per redemption (the lock, this) rather than four,
    each a round trip and the client's and the server's work per statement."""
    reward = config.reward(reward_name)
    if reward is None:
        by_key = conn.execute(_BY_KEY, {"key": key}).one_or_none()
        if by_key is None:
            raise _no_reward(config, reward_name)
        _same_redemption(by_key, customer.id, reward_name, key)
        return by_key
    values = _new_values(
        customer.id, reward, key, config, platform, now, reward.points, new_code(code_prefix)
    )
    values.update(
        key=key,
        any_tier=not reward.tiers,
        tiers=list(reward.tiers),
        kind=LedgerKind.REDEMPTION,
        debit=-reward.points,
        note=_debit_note(reward),
    )
    ((existing_id, tier, points, new_id),) = fetch_all(conn, _RESERVE, values)
    if new_id is not None:
        return Redemption(id=new_id, **{name: values[name] for name in _NEW_COLUMNS})
    if existing_id is None:  # refused by the statement's own check
        if not reward.allowed_for(tier):
            raise _not_for_tier(config, reward, tier)
        raise _not_enough(reward, int(points))
    existing = conn.execute(_BY_ID, {"id": existing_id}).one()
    _same_redemption(existing, customer.id, reward_name, key)
    return existing


def _reward(config: LoyaltyConfig, name: str) -> Reward:
    reward = config.reward(name)
    if reward is None:
        raise _no_reward(config, name)
    return reward


def _no_reward(config: LoyaltyConfig, name: str) -> RewardUnavailable:
    known = ", ".join(r.name for r in config.rewards) or "none configured"
    return RewardUnavailable(f"REWARD: no reward {name!r} ({known})")


def _same_redemption(
    existing: Redemption | Row[Any], customer_id: int, reward_name: str, key: str
) -> None:
    if existing.customer_id != customer_id or existing.reward != reward_name:
        raise InvalidInput(f"key {key!r} was used for another redemption")


def _not_for_tier(config: LoyaltyConfig, reward: Reward, tier: str | None) -> RewardUnavailable:
    return RewardUnavailable(
        f"{reward.name} is for tier(s) {', '.join(reward.tiers)}; the customer is "
        f"{tier or config.tiers.base.name}"
    )


def _not_enough(reward: Reward, points: int) -> NotEnoughPoints:
    return NotEnoughPoints(f"{reward.name} costs {reward.points} points; balance is {points}")


def _debit_note(reward: Reward) -> str:
    return f"{reward.name}: {reward.title}"


def _new_values(
    customer_id: int,
    reward: Reward,
    key: str,
    config: LoyaltyConfig,
    platform: str,
    now: datetime,
    cost: int,
    code: str,
) -> dict[str, Any]:
    """A new redemption's columns, ``pending``."""
    return {
        "idempotency_key": key,
        "customer_id": customer_id,
        "reward": reward.name,
        "title": reward.title,
        "description": reward.describe(config.shop_currency)[:255],
        "points": cost,
        "platform": platform,
        "code": code,
        "status": RedemptionStatus.PENDING,
        "issued_at": None,
        "expires_at": now + timedelta(days=reward.valid_days),
        "created_at": now,
        "attempts": 0,
    }


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


def settle(
    session: Session, redemption_id: int, outcome: Outcome, *, now: datetime
) -> RedemptionView:
    """Step 3, in the caller's transaction: record ``outcome`` on a still pending redemption,
    and return the redemption as it then is.

    A redemption settled meanwhile (a retry, the recovery step) is left as it is.
    """
    if outcome.issued is not None:
        params = {"redemption_id": redemption_id, "ref": outcome.issued.platform_ref, "now": now}
        issued = session.execute(_ISSUE, params).one_or_none()
        if issued is not None:
            return RedemptionView.of(issued)
        return RedemptionView.of(session.get_one(Redemption, redemption_id))
    query = select(Redemption).where(Redemption.id == redemption_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalars(query).one()
    if row.status is not RedemptionStatus.PENDING:
        return RedemptionView.of(row)
    row.attempts += 1
    if outcome.refused is not None:
        refund(session, row, status=RedemptionStatus.REFUNDED, why=outcome.refused)
    else:
        row.last_error = (outcome.pending or "")[:1000]
    return RedemptionView.of(row)


def record_issued(
    engine: Engine, redemption_id: int, issued: IssuedCode, *, now: datetime
) -> RedemptionView | None:
    """``settle`` of a code the platform made, as one statement committed on its own
    (PostgreSQL: in autocommit, no BEGIN and COMMIT round trips, without waiting for the
    disk: ``_ISSUE_NOT_WAITING``, and run by the driver: ``driver_statements``); None when the
    redemption was no longer pending (``settle`` then reads it as it is)."""
    params = {"redemption_id": redemption_id, "ref": issued.platform_ref, "now": now}
    with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            row = conn.execute(_ISSUE, params).one_or_none()
            conn.commit()
            return RedemptionView.of(row) if row is not None else None
        conn.execution_options(isolation_level="AUTOCOMMIT")
        rows = fetch_all(conn, _ISSUE_NOT_WAITING, params)
    if not rows:
        return None
    # The driver's values, as the columns' types would have read them.
    key_id, key, reward, points, code, status, expires_at, order_id, last_error, _ = rows[0]
    return RedemptionView.of(
        _Viewed(
            key_id,
            key,
            reward,
            points,
            code,
            RedemptionStatus(status),
            expires_at.astimezone(UTC),
            order_id,
            last_error,
        )
    )


def held_codes(session: Session, customer_id: int) -> list[RedemptionView]:
    """The customer's redemptions, newest first."""
    rows = session.scalars(
        select(Redemption)
        .where(Redemption.customer_id == customer_id)
        .order_by(Redemption.id.desc())
    )
    return [RedemptionView.of(row) for row in rows]
