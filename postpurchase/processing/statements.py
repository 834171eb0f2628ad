"""Bulk inserts that skip rows already present, on both SQLite and PostgreSQL.

This is how every planning step stays idempotent: the unique key says "already done".

PostgreSQL gets one ``INSERT ... SELECT FROM unnest(<one array per column>)`` per call: a
short statement with a handful of array parameters, instead of thousands of placeholders that
the driver would have to parse for every batch. SQLite gets ``INSERT ... ON CONFLICT DO
NOTHING`` in multi-row chunks.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault


def insert_ignoring_conflicts(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], *, chunk: int = 1000
) -> int:
    """Insert ``rows`` (dicts with the same keys) into ``model``'s table, skipping any that
    hit a unique constraint. Returns how many were inserted."""
    if not rows:
        return 0
    table: Table = model.__table__
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        return _insert_unnest(session, table, rows, dialect)
    inserted = 0
    for start in range(0, len(rows), chunk):
        stmt = sqlite.insert(table).on_conflict_do_nothing().returning(table.c.id)
        inserted += len(session.execute(stmt, list(rows[start : start + chunk])).all())
    return inserted


def _plain(value: Any) -> Any:
    """A value as the driver should receive it inside an array (no SQLAlchemy type applies)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store needs timezone-aware times")
    return value


def _insert_unnest(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], dialect: Dialect
) -> int:
    names = list(rows[0])
    if any(row.keys() != rows[0].keys() for row in rows):
        raise ValueError(f"rows for {table.name} must all have the same keys")
    quote = dialect.identifier_preparer.quote
    # Python-side column defaults are not applied to INSERT ... SELECT: add them as constants.
    defaults = {
        c.name: c.default.arg
        for c in table.columns
        if c.name not in names and isinstance(c.default, ScalarElementColumnDefault)
    }
    params: dict[str, Any] = {}
    arrays, constants = [], []
    for i, name in enumerate(names):
        params[f"a{i}"] = [_plain(row[name]) for row in rows]
        arrays.append(f"CAST(:a{i} AS {table.c[name].type.compile(dialect)}[])")
    for i, (name, value) in enumerate(defaults.items()):
        params[f"d{i}"] = _plain(value)
        constants.append(f"CAST(:d{i} AS {table.c[name].type.compile(dialect)})")
    columns = ", ".join(quote(name) for name in [*names, *defaults])
    statement = (
        f"INSERT INTO {quote(table.name)} ({columns}) "
        f"SELECT {', '.join(['u.*', *constants])} FROM unnest({', '.join(arrays)}) AS u "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    return len(session.execute(text(statement), params).all())
