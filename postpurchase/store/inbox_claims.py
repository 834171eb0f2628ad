"""Claiming inbox rows inside the transaction that processes them.

A claim takes pending rows and marks them ``done`` in one statement, in the caller's
transaction, the one that then does their work: the row versions the claim writes are the
only ones a processed row gets. Until that transaction ends, its row locks keep the rows from
other drainers (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so they take the next rows instead of
waiting; SQLite: the store's ``BEGIN IMMEDIATE`` transaction holds the single writer lock). If
the work fails or the worker dies, the transaction rolls back and the rows are simply pending
again: no lease has to run out first.

A failure is counted on the row in a transaction of its own (``record_inbox_failure``), after
the failed one rolled back, and the row is ``failed`` once it has failed ``max_attempts``
times: one poisonous row cannot come back for ever.

Rows that an earlier version of the drain left ``claimed`` (claimed, then its worker died) are
taken back once their lease has run out (``reclaim_expired_inbox_rows``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    LargeBinary,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session

from postpurchase.store.claims import status_is
from postpurchase.store.driver_statements import fetch_all
from postpurchase.store.membership import among_parameter, array_literal
from postpurchase.store.models import ClaimStatus, InboxEvent
from postpurchase.store.planner_settings import WITHOUT_SORT, restoring

# The claim is built on the table: it returns plain rows, and SQLAlchemy's ORM execution path
# added client time to each claim for nothing.
_INBOX: Any = InboxEvent.__table__
_GIVEN_UP = "processing did not finish within the claim lease, {n} time(s)"


class ClaimedRow(NamedTuple):
    """A claimed inbox row, as ``claim_inbox_rows`` returns it."""

    id: int
    source: str
    shop: str | None
    payload: bytes  # the JSON text, encoded in UTF-8
    attempts: int


def claim_inbox_rows(
    session: Session,
    *,
    worker: str,
    now: datetime,
    limit: int,
    after_id: int = 0,
    only: Sequence[int] = (),
) -> list[ClaimedRow]:
    """Take up to ``limit`` pending inbox rows (oldest first), marked ``done`` (processed at
    ``now``, by ``worker``, one more attempt) in the caller's transaction, and return their
    ``id``, ``source``, ``shop``, ``payload`` (the JSON text in UTF-8 bytes) and
    ``attempts``, by id.

    The caller does the rows' work in the same transaction and rolls it back if that fails.
    ``only``: take these rows only (if still pending and not held by another transaction).

    Pending rows are looked for above ``after_id`` only. A drain passes the highest id of its
    previous claim: the rows it just processed stay in the claim index until the table is
    vacuumed, and walking past them made every claim slower than the one before. Rows below
    it that go back to pending (to be retried) need a claim from the start.
    """
    dialect = session.get_bind().dialect.name
    statement = claim_statement(dialect, after=bool(after_id), only=bool(only))
    values: dict[str, Any] = {"worker": worker, "now": now, "limit": limit}
    if after_id:
        values["after_id"] = after_id
    if dialect != "postgresql":
        if only:
            values["only"] = list(only)
        rows = map(ClaimedRow._make, session.execute(statement, values))
    else:
        # Run by psycopg (``driver_statements``): SQLAlchemy's handling of the claim and of
        # its thousand rows cost a drainer more than the database's claiming them.
        connection = session.connection()
        [(values["previous_sort"], _)] = fetch_all(connection, WITHOUT_SORT, {})
        if only:
            values["only"] = array_literal(only)
        # in binary format: the payload's bytes as they are (see ``claim_statement``)
        rows = map(ClaimedRow._make, fetch_all(connection, statement, values, binary=True))
    return sorted(rows, key=itemgetter(0))


@cache
def claim_statement(dialect: str, *, after: bool, only: bool) -> Any:
    """The claim on ``dialect`` (built once per shape), its values given as it runs:
    ``worker``, ``now``, ``limit``, ``after_id`` (if ``after``), ``only`` (if ``only``) and,
    on PostgreSQL, ``previous_sort`` (what ``WITHOUT_SORT`` gave)."""
    inbox = _INBOX.c
    # The status written into the SQL as ``status_is`` has it, but as a literal of the
    # statement's own: the driver runs what SQLAlchemy compiled, with no values to add after.
    pending = literal_column(f"'{ClaimStatus.PENDING.value}'", type_=inbox.status.type)
    candidates = select(inbox.id).where(inbox.status == pending)
    if after:
        candidates = candidates.where(inbox.id > bindparam("after_id", type_=inbox.id.type))
    if only:
        candidates = candidates.where(among_parameter(dialect, inbox.id, "only"))
    candidates = candidates.order_by(inbox.id).limit(bindparam("limit", type_=Integer))
    last: list[ColumnElement[bool]] = []  # the claim puts the sort setting back
    # The payload as the UTF-8 bytes of its JSON, which pydantic reads as they are: as text,
    # the driver decoded each payload into a str that pydantic then encoded back to UTF-8,
    # both slow for a payload with a character outside ASCII (a name, a street), which most
    # have (3.5% of a drainer's instructions on the genuine backlog).
    payload: ColumnElement[bytes] = cast(inbox.payload, LargeBinary)
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
        last.append(restoring({"enable_sort": bindparam("previous_sort", type_=Text)}))
        payload = func.convert_to(cast(inbox.payload, Text), "UTF8", type_=LargeBinary)
    return (
        update(_INBOX)
        .where(inbox.id.in_(candidates.scalar_subquery()), *last)
        .values(
            status=ClaimStatus.DONE,
            claimed_by=bindparam("worker", type_=inbox.claimed_by.type),
            lease_until=None,
            attempts=inbox.attempts + 1,
            processed_at=bindparam("now", type_=inbox.processed_at.type),
            last_error=None,
        )
        .returning(
            inbox.id,
            inbox.source,
            inbox.shop,
            payload.label("payload"),
            inbox.attempts,
        )
    )


def fail_claimed_inbox_rows(session: Session, reasons: Mapping[int, str]) -> None:
    """Mark rows this transaction claimed ``failed``, each with its reason (a payload that
    retrying cannot fix)."""
    if not reasons:
        return
    table: Any = InboxEvent.__table__  # the Core table: an executemany by its own key
    session.execute(
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(status=ClaimStatus.FAILED, processed_at=None, last_error=bindparam("reason")),
        [{"row_id": row_id, "reason": reason} for row_id, reason in reasons.items()],
    )


def record_inbox_failure(
    session: Session, inbox_id: int, reason: str, *, worker: str, max_attempts: int
) -> ClaimStatus | None:
    """Count a failed attempt at a pending row (its claim was rolled back) with its reason:
    the row stays pending, or is ``failed`` once it has failed ``max_attempts`` times (or
    at once with ``max_attempts`` 0). Returns the row's status, or None when the row is no
    longer pending (another drainer has processed it meanwhile)."""
    attempts = InboxEvent.attempts + 1
    return session.execute(
        update(InboxEvent)
        .where(InboxEvent.id == inbox_id, status_is(InboxEvent, ClaimStatus.PENDING))
        .values(
            status=case(
                (attempts >= max_attempts, _status(ClaimStatus.FAILED)),
                else_=_status(ClaimStatus.PENDING),
            ),
            attempts=attempts,
            claimed_by=worker,
            last_error=reason,
        )
        .returning(InboxEvent.status)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()


def reclaim_expired_inbox_rows(session: Session, *, now: datetime, max_attempts: int) -> int:
    """Rows left ``claimed`` by a worker of an earlier version that died: once their lease has
    run out, back to pending, or ``failed`` after ``max_attempts`` claims. How many moved.

    A drain does this once, when it starts: claims no longer leave rows ``claimed``.
    """
    expired = (
        status_is(InboxEvent, ClaimStatus.CLAIMED),
        InboxEvent.lease_until < now,
    )
    moved = 0
    for given_up, values in (
        (
            InboxEvent.attempts >= max_attempts,
            {"status": ClaimStatus.FAILED, "last_error": _GIVEN_UP.format(n=max_attempts)},
        ),
        (InboxEvent.attempts < max_attempts, {"status": ClaimStatus.PENDING}),
    ):
        result = session.execute(
            update(InboxEvent)
            .where(*expired, given_up)
            .values(lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        moved += int(result.rowcount)  # type: ignore[attr-defined]
    return moved


def _status(status: ClaimStatus) -> Any:
    return literal(status, type_=InboxEvent.__table__.c.status.type)
