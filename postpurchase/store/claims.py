"""Claiming due touchpoints so that concurrent dispatchers never take the same row.

A claim moves rows to ``claimed`` with a lease. If the claimant dies, the lease runs out and
the rows are claimable again; a row whose leases keep running out is given up after
``max_attempts`` so one poisonous row never blocks the rest.

Right before a message is handed to a provider its row is marked ``sending`` (and committed).
A ``sending`` row whose lease runs out may or may not have been sent, so it becomes
``unknown`` and is never sent again blind; rows the dead worker had not reached yet are simply
claimed again.

PostgreSQL: ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``, so claimants skip
each other's rows instead of waiting. SQLite: the same statement inside the store's
``BEGIN IMMEDIATE`` transaction, so claimants queue for the single writer lock.

Inbox rows are claimed otherwise, inside the transaction that processes them
(``postpurchase.store.inbox_claims``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    Update,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Grouping

from postpurchase.store.membership import among, among_parameter
from postpurchase.store.models import (
    CampaignPause,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.store.planner_settings import restoring, without

_TABLE: Table = Touchpoint.__table__  # type: ignore[assignment]
# The statuses a worker holds a row in (and may release it from).
_HELD = (TouchpointStatus.CLAIMED, TouchpointStatus.SENDING)
_GIVEN_UP = "dispatch did not finish within the claim lease, {n} time(s)"
# A claim's steps walk ix_touchpoints_due with these off on PostgreSQL (``planner_settings``).
_WALKED_WITHOUT = ("enable_sort", "enable_bitmapscan")
_WALKS = without(*_WALKED_WITHOUT)

_SENDING_LOST = (
    "the dispatcher stopped while handing the message to the provider: it may or may not "
    "have been sent, so it is not sent again"
)


def claim_due_touchpoints(
    session: Session,
    *,
    worker: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    max_attempts: int = 5,
) -> list[int]:
    """Claim up to ``limit`` planned touchpoints due by ``now``, the longest overdue first,
    and return their ids.

    First, ``sending`` rows whose lease ran out become ``unknown`` (see the module doc).
    """
    # On PostgreSQL each step walks ix_touchpoints_due, without sorting or bitmap scans
    # (``planner_settings``); the last claim puts the settings back.
    settings: dict[str, Any] = {}
    if session.get_bind().dialect.name == "postgresql":
        [before] = session.execute(_WALKS).all()  # each setting as it was, then 'off's
        settings = dict(zip(_WALKED_WITHOUT, before[: len(_WALKED_WITHOUT)], strict=True))
    session.execute(
        update(Touchpoint)
        .where(Touchpoint.status == TouchpointStatus.SENDING, Touchpoint.lease_until < now)
        .values(status=TouchpointStatus.UNKNOWN, lease_until=None, reason=_SENDING_LOST)
        .execution_options(synchronize_session=False)
    )
    due = Touchpoint.due_at <= now
    # A paused campaign's touchpoints wait, unclaimed, until it is resumed (outcomes/guard.py).
    paused = select(CampaignPause.campaign_id).where(CampaignPause.resumed_at.is_(None))
    due = and_(due, Touchpoint.campaign_id.not_in(paused))
    return _claim(session, due, worker, now, limit, lease, max_attempts, settings)


def mark_sending(
    session: Session, touchpoint_id: int, *, worker: str, lease_until: datetime | None = None
) -> bool:
    """Mark a claimed touchpoint as being handed to its provider; commit before sending.

    Returns False when this worker no longer holds the row (its lease ran out and the row went
    elsewhere, or the sweep recorded it): the message must then not be sent. ``lease_until``
    renews the row's lease, so the send has a whole lease to be answered in.
    """
    return bool(mark_sending_many(session, [touchpoint_id], worker=worker, lease_until=lease_until))


def mark_sending_many(
    session: Session, ids: Sequence[int], *, worker: str, lease_until: datetime | None = None
) -> set[int]:
    """``mark_sending`` for several touchpoints in one statement: the ids this worker held
    (and marked); the others must not be sent."""
    params: dict[str, Any] = {"ids": list(ids), "worker": worker}
    if lease_until is not None:
        params["lease_until"] = lease_until
    statement = _mark_sending(session.get_bind().dialect.name, lease_until is not None)
    return set(session.execute(statement, params).scalars())


# Dispatch runs the two statements below for every few messages: built once (and so with their
# cache key made once), they cost a fraction of what building them for each call did.


@cache
def _mark_sending(dialect: str, renew: bool) -> Update:
    table = _TABLE
    values: dict[str, Any] = {"status": TouchpointStatus.SENDING}
    if renew:
        values["lease_until"] = bindparam("lease_until")
    return (
        update(table)
        .where(
            among_parameter(dialect, table.c.id, "ids"),
            table.c.claimed_by == bindparam("worker"),
            status_among(dialect, (TouchpointStatus.CLAIMED,)),
        )
        .values(**values)
        .returning(table.c.id)
    )


def renew_leases(session: Session, ids: Sequence[int], *, worker: str, until: datetime) -> int:
    """Extend the lease of the rows among ``ids`` this worker still holds; how many it renewed.

    On PostgreSQL rows locked by another transaction are skipped: they are the worker's own
    rows being marked or recorded at this moment (which sets their lease anyway), and waiting
    for them while holding the others could deadlock with that transaction.
    """
    rows = select(Touchpoint.id).where(
        among(session, Touchpoint.id, ids),
        Touchpoint.claimed_by == worker,
        Touchpoint.status.in_(_HELD),
    )
    if session.get_bind().dialect.name == "postgresql":
        rows = rows.order_by(Touchpoint.id).with_for_update(skip_locked=True)
    result = session.execute(
        update(Touchpoint)
        .where(Touchpoint.id.in_(rows.scalar_subquery()))
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_each(
    session: Session,
    rows: Sequence[tuple[int, dict[str, Any]]],
    *,
    worker: str,
    also_from: tuple[Any, ...] = (),
) -> int:
    """Set each row's own values (final status and the like) on the rows this worker still
    holds, in one statement (on SQLite an executemany of it). Rows whose lease ran out and
    went to another worker are left alone.

    Every values dict must have the same keys. Returns the count of rows actually updated.
    ``also_from``: further statuses the row may be released from, still only when this worker
    claimed it (a provider's late answer replaces the ``unknown`` the lease sweep recorded).
    """
    if not rows:
        return 0
    names = tuple(rows[0][1])
    if session.get_bind().dialect.name == "postgresql":
        return _release_rows_at_once(session, rows, names, worker, also_from)
    params = [
        {"row_id": row_id, "worker": worker, **{f"new_{name}": values[name] for name in names}}
        for row_id, values in rows
    ]
    result = session.execute(_release_each(names, also_from), params)
    return int(result.rowcount)  # type: ignore[attr-defined]


@lru_cache(maxsize=64)
def _release_each(names: tuple[str, ...], also_from: tuple[Any, ...]) -> Update:
    table = _TABLE
    return (
        update(table)
        .where(
            table.c.id == bindparam("row_id"),
            table.c.claimed_by == bindparam("worker"),
            # not IN: an expanding list cannot go into an executemany statement
            or_(*(table.c.status == status for status in (*_HELD, *also_from))),
        )
        .values(lease_until=None, **{name: bindparam(f"new_{name}") for name in names})
    )


def _release_rows_at_once(
    session: Session,
    rows: Sequence[tuple[int, dict[str, Any]]],
    names: tuple[str, ...],
    worker: str,
    also_from: tuple[Any, ...],
) -> int:
    """``release_each`` on PostgreSQL: one statement for all the rows (an executemany is a
    statement per row there, each planned and run on its own). Values the rows share are
    plain parameters, the others arrays in the order of ``row_ids``."""
    same, each, params = _release_parameters(rows, names)
    params["worker"] = worker
    result = session.execute(_release_rows(same, each, also_from), params)
    return int(result.rowcount)  # type: ignore[attr-defined]


def shared_and_own(
    rows: Sequence[tuple[int, dict[str, Any]]], names: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Of ``names``, those whose value all ``rows`` share (one parameter for all), and the
    others (an array, a value per row)."""
    first = rows[0][1]
    same = tuple(name for name in names if all(v[name] == first[name] for _, v in rows))
    return same, tuple(name for name in names if name not in same)


def _release_parameters(
    rows: Sequence[tuple[int, dict[str, Any]]], names: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]:
    """The names whose value the rows share, the others, and the parameters of
    ``_release_rows`` for ``rows``."""
    same, each = shared_and_own(rows, names)
    first = rows[0][1]
    params: dict[str, Any] = {"row_ids": [row_id for row_id, _ in rows]}
    params.update((f"new_{name}", first[name]) for name in same)
    params.update((f"each_{name}", [values[name] for _, values in rows]) for name in each)
    return same, each, params


@lru_cache(maxsize=64)
def _release_rows(
    same: tuple[str, ...], each: tuple[str, ...], also_from: tuple[Any, ...]
) -> Update:
    table = _TABLE
    row_ids = cast(bindparam("row_ids"), postgresql.ARRAY(table.c.id.type))
    # Each row takes its value from the arrays at its own id's position: no join with the
    # list of rows, whose plan would depend on the table's statistics (see membership).
    at = func.array_position(row_ids, table.c.id)
    return (
        update(table)
        .where(
            among_parameter("postgresql", table.c.id, "row_ids"),
            table.c.claimed_by == bindparam("worker"),
            status_among("postgresql", (*_HELD, *also_from)),
        )
        .values(
            lease_until=None,
            **{name: bindparam(f"new_{name}") for name in same},
            **{
                name: type_coerce(
                    Grouping(
                        cast(
                            bindparam(f"each_{name}"),
                            postgresql.ARRAY(table.c[name].type),
                        )
                    ),
                    postgresql.ARRAY(table.c[name].type),
                )[at]
                for name in each
            },
        )
    )


def _claim(
    session: Session,
    due: ColumnElement[bool],
    worker: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    max_attempts: int,
    settings: dict[str, Any],
) -> list[int]:
    """Claim due touchpoints; the claimed rows' ids, in order. ``settings``: on PostgreSQL,
    the planner's settings as they were before the claim, put back by its last statement."""
    expired = and_(status_is(Touchpoint, TouchpointStatus.CLAIMED), Touchpoint.lease_until < now)
    ready = and_(status_is(Touchpoint, TouchpointStatus.PLANNED), due)
    session.execute(
        update(Touchpoint)
        .where(expired, Touchpoint.attempts >= max_attempts)
        .values(
            status=TouchpointStatus.FAILED,
            lease_until=None,
            reason=_GIVEN_UP.format(n=max_attempts),
        )
        .execution_options(synchronize_session=False)
    )
    claimed: list[int] = []
    # Rows whose lease ran out go first: they have waited longest. One query per condition,
    # each walking its own part of ``ix_touchpoints_due`` in order, longest overdue first:
    # one query with an OR of the two made PostgreSQL visit every row that was ever
    # claimed, on each claim. Walked without sorting, a claim stops at its limit; sorted,
    # every claim fetched and sorted all the due rows (27 of 40 ms for a claim of 500 among
    # 50,000 due, on tables without statistics).
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    for condition in (and_(expired, Touchpoint.attempts < max_attempts), ready):
        if len(claimed) >= limit:
            break
        candidates = select(Touchpoint.id).where(condition).order_by(Touchpoint.due_at)
        candidates = candidates.limit(limit - len(claimed))
        last: list[ColumnElement[bool]] = []
        if on_postgresql:
            candidates = candidates.with_for_update(skip_locked=True)
            if condition is ready:  # the last statement: it puts the settings back
                last.append(restoring(settings))
                settings = {}
        claimed += session.scalars(
            update(Touchpoint)
            .where(Touchpoint.id.in_(candidates.scalar_subquery()), *last)
            .values(
                status=TouchpointStatus.CLAIMED,
                claimed_by=worker,
                lease_until=now + lease,
                attempts=Touchpoint.attempts + 1,
            )
            .returning(Touchpoint.id)
            .execution_options(synchronize_session=False)
        )
    if settings:  # rows whose lease ran out filled the claim: no claim of the ready rows
        session.execute(select(restoring(settings)))
    return sorted(claimed)


def status_among(dialect: str, statuses: Sequence[TouchpointStatus]) -> ColumnElement[bool]:
    """Whether a touchpoint found by its id is in one of ``statuses``: a check of the rows,
    never a way to find them.

    On PostgreSQL the status is compared under the "C" collation, which no index has (the
    same equality for these ASCII names), so the planner looks the rows up by their ids. On
    tables without statistics it guessed that a status matches a few rows and walked
    ``ix_touchpoints_due`` through every held row of every worker (a thousand rows for the
    four of a wave, twice per commit: two thirds of the database's time per message).
    """
    column: ColumnElement[Any] = _TABLE.c.status
    if dialect == "postgresql":
        column = column.collate("C")
    # not IN: an expanding list is written into the statement again at each run
    return or_(*(column == status.value for status in statuses))


def status_is(model: Any, status: Any) -> ColumnElement[bool]:
    """``model.status = status``, the status written into the SQL as a literal."""
    # The status goes into the SQL as a literal: a bound parameter cannot match the partial
    # index of claimable rows once PostgreSQL switches to a prepared statement's
    # generic plan, and the claim would then walk every row ever processed.
    column: ColumnElement[Any] = model.status
    return column == bindparam(None, status, type_=column.type, literal_execute=True)
