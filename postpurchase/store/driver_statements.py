"""A statement of a hot path run by psycopg itself on a SQLAlchemy connection (PostgreSQL).

SQLAlchemy's handling of each execution (its compiled cache looked up, parameters
processed, the cursor's description read to build the result, the row wrapped) cost more of
the client's CPU than psycopg's own running of the statement, for each of a storefront
redemption's few statements. Here the statement is compiled once per dialect, prepared by
psycopg on the connection, and run with plain values: the rows come back as tuples of what
psycopg read, which the caller turns into the column types' values (an enum from its
string, a time in UTC).

Errors are raised as SQLAlchemy raises them (``IntegrityError`` for a unique key, ...), and
a connection an error left unusable is invalidated, so callers and the pool see no
difference.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, TypeVar, cast

import psycopg
from sqlalchemy import Connection, Enum
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


@lru_cache(maxsize=64)
def _compiled(statement: ClauseElement, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The SQL of ``statement`` and the values of its literal parameters (the others must be
    given: one left out is an error, not a NULL)."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    if compiled.insert_prefetch or compiled.update_prefetch:
        # Values SQLAlchemy computes as it executes (a column's Python default): not here.
        raise ValueError("a statement with Python-side column defaults needs SQLAlchemy")
    defaults = {
        name: plain(bind.effective_value)
        for bind, name in compiled.bind_names.items()
        if not bind.required
    }
    return compiled.string, defaults


def plain(value: Any) -> Any:
    """A value as the column stores it: an enum by its value, a time with its zone."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime) and value.tzinfo is None:
        # as the store's UtcDateTime columns refuse it: PostgreSQL would take it for local time
        raise ValueError(f"naive datetime {value!r}: the store needs timezone-aware times")
    return value


@cache
def orm_typed(model: Any, names: tuple[str, ...]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """A row of ``model``'s columns ``names`` as ``fetch_all`` reads it -> its values as the
    ORM gives them: an enum's as its member (psycopg reads it as its text). Times already come
    in UTC (the session's zone, see ``make_engine``); other values are psycopg's as they are.
    """
    table = model.__table__
    convert: list[tuple[int, Callable[[Any], Any]]] = []
    for at, name in enumerate(names):
        column_type = table.c[name].type
        if isinstance(column_type, Enum) and column_type.enum_class is not None:
            convert.append((at, _Members(column_type.enum_class).__getitem__))
    if not convert:
        return _as_read

    def typed(row: Sequence[Any]) -> list[Any]:
        values = list(row)
        for at, to_type in convert:
            value = values[at]
            if value is not None:
                values[at] = to_type(value)
        return values

    return typed


def _as_read(row: Sequence[Any]) -> Sequence[Any]:
    return row


class _Members(dict[Any, enum.Enum]):
    """An enum's members by value: a dict lookup where calling the enum class (its Python
    ``__call__`` and ``__new__``) cost about 5K instructions a value, a sixth of reading a
    dispatch chunk's rows. A value that is no member's is looked up by the enum class itself,
    which raises its ``ValueError``."""

    def __init__(self, enum_class: type[enum.Enum]) -> None:
        super().__init__((member.value, member) for member in enum_class)
        self._enum_class = enum_class

    def __missing__(self, value: Any) -> enum.Enum:
        return self._enum_class(value)


def fetch_all(
    connection: Connection,
    statement: Executable,
    params: Mapping[str, Any],
    *,
    binary: bool = False,
) -> list[tuple[Any, ...]]:
    """The rows ``statement`` (a SQLAlchemy statement, its parameters named as in ``params``)
    returns when run on ``connection``, in its transaction (or in autocommit) as it is.

    ``binary``: the rows come in PostgreSQL's binary format, in which a ``bytea`` is read as
    the bytes it holds (in text format psycopg reads them back from hex).
    """
    sql, values = _sql_and_values(connection, statement, params)
    return _run(connection, sql, values, _all_rows, binary=binary)


def rows_changed(connection: Connection, statement: Executable, params: Mapping[str, Any]) -> int:
    """``fetch_all`` for a statement that returns no rows (an UPDATE, say): how many rows it
    changed."""
    sql, values = _sql_and_values(connection, statement, params)
    return _run(connection, sql, values, _rowcount)


def _sql_and_values(
    connection: Connection, statement: Executable, params: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    assert isinstance(statement, ClauseElement)
    sql, defaults = _compiled(statement, connection.dialect)
    return sql, {**defaults, **{name: plain(value) for name, value in params.items()}}


def run_prepared(
    connection: Connection, sql: str, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (psycopg's ``%(name)s`` placeholders, plain ``values``), prepared
    (unless the connection prepares nothing) and run by psycopg on ``connection``'s driver
    connection.

    A database error is raised as SQLAlchemy's; a connection it left unusable (closed, in an
    unknown state, or no longer idle though in autocommit) is invalidated, so closing it gives
    it back to the pool to be replaced.
    """
    return _run(connection, sql, values, _all_rows)


_T = TypeVar("_T")


def _all_rows(cursor: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
    return cursor.fetchall()


def _rowcount(cursor: psycopg.Cursor[Any]) -> int:
    return cursor.rowcount


def _run(
    connection: Connection,
    sql: str,
    values: Mapping[str, Any],
    result: Callable[[psycopg.Cursor[Any]], _T],
    *,
    binary: bool = False,
) -> _T:
    driver = connection.connection.dbapi_connection
    assert isinstance(driver, psycopg.Connection)
    # A connection told to prepare nothing (``database.cached_key_checks``: a generic plan
    # kept for a statement would outlive the tables' sizes it was made for) is obeyed.
    prepare = None if driver.prepare_threshold is None else True
    try:
        with driver.cursor() as cursor:
            cursor.execute(sql, values, prepare=prepare, binary=binary)
            return result(cursor)
    except psycopg.Error as exc:
        status = driver.info.transaction_status
        unusable = (
            driver.closed
            or status is psycopg.pq.TransactionStatus.UNKNOWN
            or (driver.autocommit and status is not psycopg.pq.TransactionStatus.IDLE)
        )
        if unusable:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            None,
            exc,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=unusable,
            dialect=connection.dialect,
        ) from exc
