"""Inserts that skip (or update) rows already present, on both SQLite and PostgreSQL.

This is how every writing step stays idempotent: the unique key says "already done".
``dialect_insert`` is the dialect's own INSERT (``on_conflict_do_nothing``/``_do_update``) for
a handful of rows; ``insert_ignoring_conflicts`` is the bulk path. ``update_by_id`` writes back
rows a batch changed, each with its own values.

PostgreSQL gets one ``INSERT ... SELECT FROM jsonb_array_elements(<the rows as one JSON
array>)`` per call: a short statement with one parameter, instead of thousands of
placeholders that the driver would have to parse for every batch. The array is encoded in C
(msgspec): handing the driver one Python list per column cost more client time than the
database spent inserting. Each row is an array of its values in the columns' order, read by
position from the parsed ``jsonb``: rows as JSON objects read by ``json_to_recordset`` cost
the database more than twice as much per row (a hash table of each object's keys, made and
looked up for every row), about 8% of its instructions in a drain. SQLite gets ``INSERT ...
ON CONFLICT DO NOTHING`` in multi-row chunks. Updates go the same way: one ``UPDATE ...
FROM`` the rows so given on PostgreSQL instead of a statement per row (its rows looked up by
id), an executemany on SQLite. ``insert_objects`` and ``update_objects_by_id`` do the same on
PostgreSQL for rows given as dataclass instances.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
from sqlalchemy import (
    DateTime,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from postpurchase.store.driver_statements import fetch_all, rows_changed


def dialect_insert(session: Session, model: Any) -> Any:
    """An INSERT into ``model`` in the session's dialect, so ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` are there on both SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


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
        return _insert_json(session, table, rows)
    inserted = 0
    # a row back per row inserted: the first column of the primary key (``id`` on most tables)
    key = next(iter(table.primary_key))
    for start in range(0, len(rows), chunk):
        stmt = sqlite.insert(table).on_conflict_do_nothing().returning(key)
        inserted += len(session.execute(stmt, list(rows[start : start + chunk])).all())
    return inserted


# Decimals as JSON strings keep every digit; enums are their values; datetimes RFC 3339.
_ENCODER = msgspec.json.Encoder(decimal_format="string")


def _insert_json(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    first = rows[0].keys()
    # compared in C (no Python frame per row): a few rows among thousands with other keys
    if not all(map(first.__eq__, map(dict.keys, rows))):
        raise ValueError(f"rows for {table.name} must all have the same keys")
    return _insert_encoded(session, table, tuple(first), rows, itemgetter)


def insert_objects(
    session: Session, model: Any, names: tuple[str, ...], rows: Sequence[Any]
) -> int:
    """``insert_ignoring_conflicts`` on PostgreSQL for ``rows`` given as dataclass instances
    (of one class) whose fields include ``names``, the columns inserted: their values read
    by ``attrgetter`` into a tuple per row (a dict made of each, to be encoded, cost a
    drainer more than the encoding)."""
    if not rows:
        return 0
    return _insert_encoded(session, model.__table__, names, rows, attrgetter)


def _insert_encoded(
    session: Session,
    table: Table,
    names: tuple[str, ...],
    rows: Sequence[Any],
    getter: Callable[..., Callable[[Any], Any]],
) -> int:
    """Insert ``rows`` (each encoded by msgspec as an array of its values of ``names``; a
    value read by ``getter(name)``) in one statement on PostgreSQL."""
    dialect = session.get_bind().dialect
    _refuse_naive_times(table, names, rows, getter)
    statement, constants = _json_insert(table, names, dialect)
    params = {**constants, "rows": _encoded(rows, names, getter)}
    return int(fetch_all(session.connection(), statement, params)[0][0])


def _encoded(
    rows: Sequence[Any], names: tuple[str, ...], getter: Callable[..., Callable[[Any], Any]]
) -> str:
    """``rows`` as one JSON array of arrays, each row's values of ``names`` in their order
    (read by ``getter(*names)``, one tuple per row made in C), for ``_row_values``."""
    read = getter(*names)
    values = list(map(read, rows)) if len(names) > 1 else [(read(row),) for row in rows]
    return _ENCODER.encode(values).decode()


def _row_values(table: Table, names: tuple[str, ...], dialect: Dialect) -> list[str]:
    """The SQL of each of ``names``' value in a row given as a JSON array (``r``, a ``jsonb``
    element of the array ``_encoded`` makes), as ``json_to_recordset`` read them from an
    object before: a JSON null is SQL NULL; a JSON column gets the value as it is; any other
    column its value as text, read by the column type's input. Strings stay text, so that
    the column's length is checked when the value is assigned (an error, as the input with
    the column's length was): a cast to ``VARCHAR(n)`` would cut the value short instead."""
    values = []
    for i, name in enumerate(names):
        kind = table.c[name].type
        sql_type = kind.compile(dialect)
        if sql_type in ("JSON", "JSONB"):
            values.append(f"CAST(NULLIF(r -> {i}, 'null'::jsonb) AS {sql_type})")
        elif isinstance(getattr(kind, "impl_instance", kind), String):
            values.append(f"r ->> {i}")
        else:
            values.append(f"CAST(r ->> {i} AS {sql_type})")
    return values


def _refuse_naive_times(
    table: Table,
    names: tuple[str, ...],
    rows: Sequence[Any],
    getter: Callable[[str], Callable[[Any], Any]],
) -> None:
    """A ValueError if a time among ``rows`` (its values read by ``getter(name)``) has no
    zone: msgspec would write it without an offset, and PostgreSQL take it for its own local
    time (as ``UtcDateTime`` refuses it)."""
    for name in _times(table, names):
        # ``tzinfo`` of each value not None, read in C (a naive datetime's is None): a check
        # in Python per value cost a drainer about a microsecond per event
        if None in map(_TZINFO, filter(None, map(getter(name), rows))):
            raise ValueError(f"{table.name}.{name}: the store needs timezone-aware times")


_TZINFO = attrgetter("tzinfo")


@lru_cache(maxsize=256)
def _times(table: Table, names: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``names`` that are time columns of ``table`` (the store's are ``UtcDateTime``,
    a decorated DateTime)."""
    types = {name: table.c[name].type for name in names}
    return tuple(
        name
        for name, kind in types.items()
        if isinstance(getattr(kind, "impl_instance", kind), DateTime)
    )


# Built once per table and set of columns (and so compiled once, ``driver_statements``), and
# run by psycopg: building the text again for every batch, and SQLAlchemy's handling of each
# execution, cost a drainer more than the database's inserting.
@lru_cache(maxsize=128)
def _json_insert(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[TextClause, dict[str, Any]]:
    """The statement that inserts rows of ``names`` given as one JSON array (``:rows``), and
    the values of its constants."""
    quote = dialect.identifier_preparer.quote
    # Python-side column defaults are not applied to INSERT ... SELECT: add them as constants.
    defaults = {
        c.name: c.default.arg
        for c in table.columns
        if c.name not in names and isinstance(c.default, ScalarElementColumnDefault)
    }
    constants: dict[str, Any] = {}
    selected_constants = []
    for i, (name, value) in enumerate(defaults.items()):
        constants[f"d{i}"] = value.value if isinstance(value, enum.Enum) else value
        selected_constants.append(f"CAST(:d{i} AS {table.c[name].type.compile(dialect)})")
    columns = ", ".join(quote(name) for name in [*names, *defaults])
    selected = ", ".join([*_row_values(table, names, dialect), *selected_constants])
    # The rows inserted are counted by the database: one row back, not one per row inserted
    # (fetched, each, through the driver and SQLAlchemy).
    statement = text(
        f"WITH inserted AS (INSERT INTO {quote(table.name)} ({columns}) "
        f"SELECT {selected} FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS u(r) "
        f"ON CONFLICT {_conflict_target(table, names, quote)}DO NOTHING RETURNING 1) "
        "SELECT count(*) FROM inserted"
    )
    return statement, constants


def _conflict_target(table: Table, names: tuple[str, ...], quote: Callable[[str], str]) -> str:
    """The unique key an insert of ``names`` can conflict on, as ``ON CONFLICT``'s target
    (``"(a, b) "``), or "" (every unique key) when it may conflict on more than one.

    A primary key none of whose columns is inserted is drawn from its sequence and cannot
    conflict; left among the arbiters, PostgreSQL looked each row up in it before inserting
    it, as in the key that can conflict: 2.4% of its instructions in a drain.
    """
    keys: list[tuple[str, ...]] = []
    for constraint in table.constraints:
        if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint):
            columns = tuple(column.name for column in constraint.columns)
            drawn = isinstance(constraint, PrimaryKeyConstraint) and not set(columns) & set(names)
            if columns and not drawn:
                keys.append(columns)
    if any(index.unique for index in table.indexes) or len(keys) != 1:
        return ""  # a unique index (maybe partial, or on expressions), or several keys
    return f"({', '.join(quote(name) for name in keys[0])}) "


def update_by_id(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Set each row's values (dicts with the same keys, ``id`` naming the row) on ``model``'s
    table, in one statement on PostgreSQL."""
    if not rows:
        return
    table: Table = model.__table__
    names = [name for name in rows[0] if name != "id"]
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in names}),
            [{"_id": row["id"], **{name: row[name] for name in names}} for row in rows],
        )
        return
    _update_encoded(session, table, tuple(names), rows, itemgetter)


def update_objects_by_id(
    session: Session, model: Any, names: tuple[str, ...], rows: Sequence[Any]
) -> None:
    """``update_by_id`` on PostgreSQL for ``rows`` given as dataclass instances (of one class)
    with an ``id`` field and the fields ``names``, the columns set: their values read as
    ``insert_objects`` reads them."""
    if rows:
        _update_encoded(session, model.__table__, names, rows, attrgetter)


def _update_encoded(
    session: Session,
    table: Table,
    names: tuple[str, ...],
    rows: Sequence[Any],
    getter: Callable[..., Callable[[Any], Any]],
) -> None:
    _refuse_naive_times(table, names, rows, getter)
    # Rows go in id order: the order the batch locked them in.
    ordered = sorted(rows, key=getter("id"))
    statement = _json_update(table, names, session.get_bind().dialect)
    rows_changed(
        session.connection(), statement, {"rows": _encoded(ordered, ("id", *names), getter)}
    )


# Built once per table and set of columns, and run by psycopg, as ``_json_insert``.
@lru_cache(maxsize=64)
def _json_update(table: Table, names: tuple[str, ...], dialect: Dialect) -> TextClause:
    """The statement that sets ``names`` on the rows given as one JSON array (``:rows``) of
    arrays, each a row's id and values of ``names`` in that order."""
    quote = dialect.identifier_preparer.quote
    values = _row_values(table, ("id", *names), dialect)
    record = ", ".join(
        f"{value} AS {quote(name)}" for value, name in zip(values, ["id", *names], strict=True)
    )
    assigned = [f"{quote(name)} = u.{quote(name)}" for name in names]
    # Columns set on every update (``onupdate=func.now()``), as the ORM's UPDATE would.
    assigned += [
        f"{quote(c.name)} = {c.onupdate.arg.compile(dialect=dialect)}"  # type: ignore[attr-defined]
        for c in table.columns
        if c.name not in names and c.onupdate is not None and c.onupdate.is_clause_element
    ]
    # The rows are taken by their ids as a list (an index lookup of each): joined to the
    # function's rows alone, a table without statistics was scanned whole for every batch.
    return text(
        f"WITH u AS MATERIALIZED (SELECT {record} FROM jsonb_array_elements(CAST(:rows AS jsonb)) "
        f"AS r(r)) UPDATE {quote(table.name)} SET {', '.join(assigned)} FROM u "
        f"WHERE {quote(table.name)}.id = u.id "
        f"AND {quote(table.name)}.id = ANY(ARRAY(SELECT id FROM u))"
    )
