"""A sending wave's commit on PostgreSQL: the outcomes waiting recorded and the next wave
marked ``sending``, as one statement handed to psycopg.

One statement is atomic on its own: on a connection in autocommit it is a transaction of one
round trip, where BEGIN, a statement per kind of row and COMMIT were four. Dispatch commits
once per wave of a few messages, so what the client spends on each commit counts per message:
SQLAlchemy's statement handling (parameters processed, the status list written into the
statement again, the result wrapped) was about a third of a worker's CPU per commit, the same
work every time. Here the statement is SQL written once per shape of commit, prepared by
psycopg on the connection, and run with plain parameters (arrays of ids and strings in their
text form, see ``membership.array_literal``).

The rows are found by their ids; the status is a check of each row, compared under the "C"
collation so the planner cannot walk an index of statuses instead (see
``claims.status_among``). A row is never both released and marked: one is marked before it is
sent, released after.

The statement's plan is kept for a chunk (``keep_plans``), where the engine has every
statement planned again at each run: its rows are found the same way whatever its parameters
(their ids are read inside the statement, where the planner does not look), so a plan for
all runs is the plan of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, String, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from postpurchase.store.claims import shared_and_own
from postpurchase.store.database import plans_back, plans_kept
from postpurchase.store.driver_statements import plain, run_prepared
from postpurchase.store.membership import array_literal
from postpurchase.store.models import Touchpoint, TouchpointStatus

_TABLE: Table = Touchpoint.__table__  # type: ignore[assignment]
# The statuses a worker holds a row in (and may release it from).
_HELD = (TouchpointStatus.CLAIMED, TouchpointStatus.SENDING)

# Per group of rows released: the names of the values its rows share, the names of those each
# row has its own of, and the statuses besides the held ones its rows may be released from.
Shape = tuple[tuple[str, ...], tuple[str, ...], tuple[TouchpointStatus, ...]]


def release_and_mark(
    connection: Connection,
    groups: Sequence[tuple[Sequence[tuple[int, dict[str, Any]]], tuple[TouchpointStatus, ...]]],
    mark: Sequence[int],
    *,
    worker: str,
    lease_until: datetime,
) -> tuple[list[int], set[int]]:
    """On ``connection`` (PostgreSQL, in autocommit): ``claims.release_each`` of every group
    (its rows, each with the same keys of values, and its ``also_from``) and
    ``claims.mark_sending_many`` of ``mark``, as one statement. Returns the count of rows
    released per group, and the ids marked.

    A database error is raised as SQLAlchemy's ``DBAPIError``; a connection it left unusable
    is invalidated (closing it gives it back to the pool to be replaced).
    """
    counts = [0] * len(groups)
    commit = wave_statement(
        groups, mark, worker=worker, lease_until=lease_until, dialect=connection.dialect
    )
    if commit is None:
        return counts, set()
    statement, params = commit
    driver = connection.connection.dbapi_connection
    if not getattr(driver, "autocommit", False):  # the marks must be committed when this returns
        raise RuntimeError("release_and_mark needs a connection in autocommit")
    # The ids written, each once: a row belongs to the marks when among them, else to the
    # first group among whose rows it is (as the statement tells them apart).
    written = [row_id for (row_id,) in run_prepared(connection, statement, params)]
    marked = set(mark).intersection(written)
    if len(groups) == 1:
        counts[0] = len(written) - len(marked)
    elif len(written) > len(marked):
        group_of: dict[int, int] = {}
        for n in reversed(range(len(groups))):
            group_of.update((row_id, n) for row_id, _ in groups[n][0])
        for row_id in written:
            if row_id not in marked:
                counts[group_of[row_id]] += 1
    return counts, marked


def keep_plans(connection: Connection) -> str:
    """On ``connection`` (PostgreSQL, in autocommit), from now on: the statements psycopg
    prepares are planned once and kept, as PostgreSQL's ``plan_cache_mode = auto`` does after
    a few runs, the plans kept before dropped. Returns the mode the connection had, for
    ``plans_as_before``.

    For a chunk's commits: planned at each run (the engine's ``force_custom_plan``, see
    ``database.make_engine``), the wave commits cost the database 30K more instructions per
    message, 650K instead of 620K (one dispatch worker, 1,000 emails more among 50,000 old
    touchpoints). A plan made anew for each chunk, for the table as it is then, outlives no
    chunk: it cannot go on scanning a table that has grown since for longer, as a plan kept
    for the connection's life did. Other statements run meanwhile must not be prepared (see
    ``database.cached_key_checks``).
    """
    return plans_kept(connection, session_wide=True)


def plans_as_before(connection: Connection, mode: str) -> None:
    """Put back ``mode`` (from ``keep_plans``) on ``connection`` (in autocommit, so it stays
    once the pool rolls back). A connection this fails on is invalidated: the pool replaces
    it rather than give out one that keeps its plans."""
    try:
        plans_back(connection, mode, session_wide=True)
    except DBAPIError as exc:
        if not connection.invalidated:
            connection.invalidate(exc)


def wave_statement(
    groups: Sequence[tuple[Sequence[tuple[int, dict[str, Any]]], tuple[TouchpointStatus, ...]]],
    mark: Sequence[int],
    *,
    worker: str,
    lease_until: datetime,
    dialect: Dialect,
) -> tuple[str, dict[str, Any]] | None:
    """The statement ``release_and_mark`` runs and its parameters; None when it has nothing
    to write."""
    params: dict[str, Any] = {"worker": worker}
    shapes: list[Shape] = []
    for n, (rows, also_from) in enumerate(groups):
        shape, group_params = _group_parameters(rows, f"g{n}_")
        shapes.append((*shape, also_from))
        params.update(group_params)
    if mark:
        params["ids"] = array_literal(mark)
        params["lease_until"] = plain(lease_until)
    if not shapes and not mark:
        return None
    return _statement(tuple(shapes), bool(mark), dialect), params


def _group_parameters(
    rows: Sequence[tuple[int, dict[str, Any]]], prefix: str
) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], dict[str, Any]]:
    """The names whose value the rows share, the others, and the group's parameters (each
    name starting with ``prefix``): values the rows share are plain parameters, the others
    arrays in the order of ``row_ids``."""
    first = rows[0][1]
    same, each = shared_and_own(rows, tuple(first))
    params: dict[str, Any] = {f"{prefix}row_ids": array_literal([row_id for row_id, _ in rows])}
    params.update((f"{prefix}new_{name}", plain(first[name])) for name in same)
    params.update(
        (f"{prefix}each_{name}", array_literal([plain(values[name]) for _, values in rows]))
        for name in each
    )
    return (same, each), params


# One part of the statement: the ids of its rows (an array in SQL), the value it writes in
# each of its columns (SQL), and the statuses its rows may be written from.
_Part = tuple[str, dict[str, str], tuple[TouchpointStatus, ...]]


@lru_cache(maxsize=64)
def _statement(shapes: tuple[Shape, ...], mark: bool, dialect: Dialect) -> str:
    # One UPDATE for every row, the marks' and each group's: PostgreSQL sets up each UPDATE
    # of a statement at every run (the table's check constraints read and compiled, a result
    # relation opened). An UPDATE per group and one for the marks, as CTEs, cost the database
    # 510K instructions per message, this 499K (one dispatch worker, 1,000 emails more among
    # 50,000 touchpoints), the CASEs' looks among the ids paid. A row belongs to the first
    # part among whose ids it is (the marks first) and takes what that part writes;
    # ``release_and_mark`` tells the parts apart the same way.
    parts: list[_Part] = []
    if mark:
        sending = {"status": f"'{TouchpointStatus.SENDING.value}'"}
        marks = _with_lease(sending, f"%(lease_until)s{_cast('lease_until', dialect)}")
        parts.append(("%(ids)s::bigint[]", marks, (TouchpointStatus.CLAIMED,)))
    for n, (same, each, also_from) in enumerate(shapes):
        row_ids = f"%(g{n}_row_ids)s::bigint[]"
        values = {name: f"%(g{n}_new_{name})s{_cast(name, dialect)}" for name in same}
        # each row takes its value at its own id's position in the arrays: no join with the
        # list of rows, whose plan would depend on the table's statistics
        values.update(
            (
                name,
                f"(%(g{n}_each_{name})s::{_column_type(name, dialect)}[])"
                f"[array_position({row_ids}, touchpoints.id)]",
            )
            for name in each
        )
        parts.append((row_ids, _with_lease(values, "NULL"), (*_HELD, *also_from)))
    columns = dict.fromkeys(name for _, values, _ in parts for name in values)
    assignments = ", ".join(
        f"{name} = {_by_part(parts, [values.get(name, name) for _, values, _ in parts])}"
        for name in columns
    )
    ids = " || ".join(row_ids for row_ids, _, _ in parts)
    return (
        f"UPDATE touchpoints SET {assignments}, updated_at = now() "
        # Through a subquery the planner takes the list for a short one (see membership).
        f"WHERE id = ANY(ARRAY(SELECT unnest({ids}))) AND claimed_by = %(worker)s "
        f"AND {_held(parts)} RETURNING id"
    )


def _with_lease(values: dict[str, str], lease_until: str) -> dict[str, str]:
    """A part's ``values`` and the lease it leaves its rows with."""
    for name in values:
        _TABLE.c[name]  # a column of the table, or KeyError: names go into the SQL
        if name in ("lease_until", "updated_at"):
            raise ValueError(f"{name} is written by the commit itself")
    return {**values, "lease_until": lease_until}


def _held(parts: list[_Part]) -> str:
    """Whether a row is in one of the statuses its part writes rows from. The statuses every
    part writes from are checked first: a row in one of them needs no look for its part."""
    common = [s for s in parts[0][2] if all(s in statuses for _, _, statuses in parts)]
    choices = [
        f'status COLLATE "C" IN ({_listed(rest)})' if rest else "false"
        for rest in ([s for s in statuses if s not in common] for _, _, statuses in parts)
    ]
    held = _by_part(parts, choices, after_where=False)
    if not common:
        return held
    in_common = f'status COLLATE "C" IN ({_listed(common)})'
    return in_common if held == "false" else f"({in_common} OR {held})"


def _by_part(parts: list[_Part], choices: list[str], *, after_where: bool = True) -> str:
    """``choices[n]`` for a row of part ``n``: one expression where all are the same, else a
    CASE. The last choice needs no test (every row is among the ids of some part), nor do
    those just before it that are the same.

    ``after_where``: for a row the WHERE clause let through, whose status is then one its
    part writes from. A part of rows in one status only (the marks) first compares the
    status: most rows of other parts need no look among its ids."""
    last = choices[-1]
    tested = list(zip(parts, choices, strict=True))
    while tested and tested[-1][1] == last:
        tested.pop()
    if not tested:
        return last
    cases = []
    for (row_ids, _, statuses), choice in tested:
        test = f"touchpoints.id = ANY({row_ids})"
        if after_where and len(statuses) == 1:
            test = f"status COLLATE \"C\" = '{statuses[0].value}' AND {test}"
        cases.append(f"WHEN {test} THEN {choice}")
    return f"CASE {' '.join(cases)} ELSE {last} END"


def _listed(statuses: Sequence[TouchpointStatus]) -> str:
    return ", ".join(f"'{status.value}'" for status in statuses)


def _column_type(name: str, dialect: Dialect) -> str:
    """The SQL type of the column ``name``."""
    return str(_TABLE.c[name].type.compile(dialect=dialect))


def _cast(name: str, dialect: Dialect) -> str:
    """The cast of a parameter written into the column ``name``: none for text. Else its type
    is the column's even among the choices of a CASE, where PostgreSQL would take a
    parameter whose type psycopg leaves to the server (``None``, say) for text."""
    if isinstance(_TABLE.c[name].type, String):
        return ""
    return f"::{_column_type(name, dialect)}"
