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

from sqlalchemy import Connection, Table
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
    marked: set[int] = set()
    written = wave_statement(
        groups, mark, worker=worker, lease_until=lease_until, dialect=connection.dialect
    )
    if written is None:
        return counts, marked
    statement, params = written
    driver = connection.connection.dbapi_connection
    if not getattr(driver, "autocommit", False):  # the marks must be committed when this returns
        raise RuntimeError("release_and_mark needs a connection in autocommit")
    answers = run_prepared(connection, statement, params)
    for group, value in answers:
        if group < 0:
            marked.add(value)
        else:
            counts[group] = value
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


@lru_cache(maxsize=64)
def _statement(shapes: tuple[Shape, ...], mark: bool, dialect: Dialect) -> str:
    # Each update is a CTE of the statement (PostgreSQL runs every data-modifying CTE, to the
    # end, whether the query reads it or not); the query reads back, per group, how many rows
    # it released (group n), then the ids marked (group -1).
    ctes, reads = [], []
    for n, (same, each, also_from) in enumerate(shapes):
        for name in (*same, *each):
            _TABLE.c[name]  # a column of the table, or KeyError: names go into the SQL
        row_ids = f"%(g{n}_row_ids)s::bigint[]"
        values = [f"{name} = %(g{n}_new_{name})s" for name in same] + [
            # each row takes its value at its own id's position in the arrays: no join with
            # the list of rows, whose plan would depend on the table's statistics
            f"{name} = (%(g{n}_each_{name})s::{_array_type(name, dialect)})"
            f"[array_position({row_ids}, touchpoints.id)]"
            for name in each
        ]
        ctes.append(
            f"released_{n} AS ("
            + _update(values, row_ids, (*_HELD, *also_from), lease_until="NULL")
            + ")"
        )
        reads.append(f"SELECT {n}, count(*) FROM released_{n}")
    if mark:
        status = f"status = '{TouchpointStatus.SENDING.value}'"
        marking = _update([status], "%(ids)s::bigint[]", (TouchpointStatus.CLAIMED,))
        ctes.append(f"marked AS ({marking})")
        reads.append("SELECT -1, id FROM marked")
    return "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL ".join(reads)


def _update(
    values: list[str],
    ids: str,
    statuses: tuple[TouchpointStatus, ...],
    lease_until: str = "%(lease_until)s",
) -> str:
    """The UPDATE of the rows among ``ids`` this worker holds in one of ``statuses``."""
    held = ", ".join(f"'{status.value}'" for status in statuses)
    return (
        f"UPDATE touchpoints SET {', '.join(values)}, lease_until = {lease_until}, "
        "updated_at = now() "
        # Through a subquery the planner takes the list for a short one (see membership).
        f"WHERE id = ANY(ARRAY(SELECT unnest({ids}))) AND claimed_by = %(worker)s "
        f'AND status COLLATE "C" IN ({held}) RETURNING id'
    )


def _array_type(name: str, dialect: Dialect) -> str:
    """The SQL type of an array of the column ``name``'s values."""
    column_type = _TABLE.c[name].type.compile(dialect=dialect)
    return f"{column_type}[]"
