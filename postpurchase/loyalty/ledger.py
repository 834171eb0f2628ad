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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postpurchase.events import CanonicalEvent
from postpurchase.exceptions import ConcurrentChange, InvalidInput
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger_rows import (
    Award,
    LedgerEvent,
    award_facts,
    award_row,
    holdings,
    intents,
    reversal_row,
)
from postpurchase.store.driver_statements import fetch_all
from postpurchase.store.membership import among_parameter, array_literal
from postpurchase.store.models import (
    Customer,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
)
from postpurchase.store.statements import insert_ignoring_conflicts
from postpurchase.stored_events import event_of

Ledger = LoyaltyLedgerEntry


@dataclass(frozen=True)
class LedgerChange:
    """A row just written, with the customer's balance after it (for templates)."""

    kind: LedgerKind
    points: int
    cause: str
    order_id: int | None
    balance: int


# The INSERT into the ledger that skips rows whose cause is already there, per dialect, built
# once and shared: ``_append`` runs once per redemption and per manual adjustment, and building
# its statement (with its cache key, which SQLAlchemy keeps on the statement) cost more client
# time than executing it. On the table, not the entity: the ORM's bulk INSERT path adds
# nothing to one row of values or to an INSERT ... SELECT.
_LEDGER_TABLE = cast(Table, Ledger.__table__)
_SKIPPING_CAUSE: dict[str, Insert] = {
    name: dialect.insert(_LEDGER_TABLE).on_conflict_do_nothing(index_elements=["cause"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_APPEND = {name: insert.returning(_LEDGER_TABLE.c.id) for name, insert in _SKIPPING_CAUSE.items()}


def ledger_insert(session: Session) -> Insert:
    """An INSERT into the ledger that skips rows whose cause is already there."""
    return _SKIPPING_CAUSE[session.get_bind().dialect.name]


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
    balance_before: int | None = None,
) -> LedgerChange | None:
    """Insert one row unless its cause exists; the change, or None when it was a duplicate.

    ``balance_before``: the customer's balance, when the caller read it under the customer's
    lock in this transaction (saves reading it again)."""
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "order_id": order_id,
        "kind": kind,
        "points": points,
        "cause": cause,
        "note": note,
        "expires_at": expires_at,
    }
    inserted = session.execute(_APPEND[session.get_bind().dialect.name], values)
    if inserted.scalar_one_or_none() is None:
        return None
    after = balance(session, customer_id) if balance_before is None else balance_before + points
    return LedgerChange(kind, points, cause, order_id, after)


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


_CUSTOMERS = cast(Table, Customer.__table__).c
# Built once and run by psycopg (``driver_statements``): it runs for every batch.
_LOCK_CUSTOMERS = (
    select(_CUSTOMERS.id)
    .where(among_parameter("postgresql", _CUSTOMERS.id, "customer_ids"))
    .order_by(_CUSTOMERS.id)
    .with_for_update()
)


def _lock_customers(session: Session, customer_ids: Sequence[int]) -> None:
    # Serialises ledger writers per customer; rows are locked in id order, in one statement.
    # SQLite needs nothing: its transactions take the single write lock when they begin.
    if session.get_bind().dialect.name == "postgresql":
        params = {"customer_ids": array_literal(customer_ids)}
        fetch_all(session.connection(), _LOCK_CUSTOMERS, params)


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
    asked = [intents(item, config) for item in events]
    wanted = [intent for of_event in asked for intent in of_event]
    if not wanted:
        return [[] for _ in events]
    customer_ids = sorted({intent.customer_id for intent in wanted})
    _lock_customers(session, customer_ids)
    held = holdings(session, customer_ids, sorted({intent.order.id for intent in wanted}))
    awards = [i for i in wanted if isinstance(i, Award) and i.cause not in held.causes]
    facts = award_facts(session, awards, config) if awards else None
    rows: list[dict[str, Any]] = []
    changes: list[list[LedgerChange]] = []
    for of_event in asked:
        changes.append([])
        for intent in of_event:
            if intent.cause in held.causes:
                continue
            row: dict[str, Any] | None
            if isinstance(intent, Award):
                assert facts is not None  # loaded for every award not yet in the ledger
                row = award_row(intent, held, facts, config)
            else:
                row = reversal_row(intent, held, config)
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
    item = LedgerEvent(event_of(event), order, customer.id)
    changes = apply_events(session, [item], config=config)[0]
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
