"""The customer and order rows a batch upserts, read and written as plain values.

A batch reads the rows of the keys it names that exist, locked on PostgreSQL, and gets a blank
record (the columns' defaults) for every other key, with an id drawn ahead: the merge then
sees every row with its id, and a new row is inserted once, with its merged values, instead of
inserted bare and updated. Rows that existed are written back with one UPDATE per table, those
that changed only.

Another worker may insert one of the new keys between the read and the insert: the insert skips
it (``ON CONFLICT DO NOTHING``) and ``write`` raises ``RowsTaken``; what was merged for that key
went from a blank row, not the stored one, so the caller merges again from a new read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from postpurchase.processing.batch import CustomerRecord, Key, OrderRecord
from postpurchase.store.driver_statements import fetch_all, orm_typed
from postpurchase.store.membership import array_literal, key_parameters, keys_among_parameter
from postpurchase.store.statements import (
    insert_ignoring_conflicts,
    insert_objects,
    update_by_id,
    update_objects_by_id,
)

_R = TypeVar("_R", CustomerRecord, OrderRecord)

_NAMES = {record: [f.name for f in fields(record)] for record in (CustomerRecord, OrderRecord)}
# A record's values as one tuple, in field order: how a changed row is told.
_VALUES = {record: attrgetter(*names) for record, names in _NAMES.items()}
_KEY = ("source", "shop", "external_id")
# A record's columns, as a key of the statement that reads them (``_load_query``).
_COLUMNS = {record: tuple(names) for record, names in _NAMES.items()}
# Each field's place in a record's values.
_AT = {record: {name: i for i, name in enumerate(names)} for record, names in _NAMES.items()}
# What an UPDATE of a changed row sets (all but its key), and how to take it from its values.
_SET = {
    record: tuple(name for name in names if name not in _KEY) for record, names in _NAMES.items()
}
_SET_VALUES = {
    record: itemgetter(*(_AT[record][name] for name in names)) for record, names in _SET.items()
}
# The columns that UPDATE sets (``update_objects_by_id``): those of ``_SET`` but the id.
_UPDATED = {record: tuple(name for name in names if name != "id") for record, names in _SET.items()}


class RowsTaken(Exception):
    """Another worker inserted rows of keys this batch read as new."""


def load(session: Session, record: type[_R], model: Any, keys: set[Key]) -> dict[Key, _R]:
    """The stored rows of ``keys`` (those that exist) as ``record`` values, locked on
    PostgreSQL."""
    if not keys:
        return {}
    dialect = session.get_bind().dialect.name
    query = _load_query(dialect, model, _COLUMNS[record])
    params = key_parameters(dialect, "keys", sorted(keys))
    # the columns are selected in the record's field order, its key second to fourth
    if dialect == "postgresql":
        # Run by psycopg (``driver_statements``), its values typed as the ORM types them: through
        # SQLAlchemy's execution and rows, reading a batch's stored rows cost a drainer more
        # CPU than merging its events into them.
        typed = orm_typed(model, _COLUMNS[record])
        arrays = {name: array_literal(keys) for name, keys in params.items()}
        rows: Any = map(typed, fetch_all(session.connection(), query, arrays))
    else:
        rows = session.execute(query, params)
    return {(row[1], row[2], row[3]): record(*row) for row in rows}


# Built once per table (and so with its cache key made once): built for each batch, the
# statement took twice the client time of running it.
@cache
def _load_query(dialect: str, model: Any, names: tuple[str, ...]) -> Select[*tuple[Any, ...]]:
    table = model.__table__
    key_columns = (table.c.source, table.c.shop, table.c.external_id)
    query = select(*(table.c[name] for name in names)).where(
        keys_among_parameter(dialect, key_columns, "keys")
    )
    if dialect == "postgresql":
        # Concurrent batches merge one after the other; locking in id order, as the ledger
        # does, keeps two batches from each holding a row the other waits for. The lock is an
        # UPDATE's that keeps the key (FOR NO KEY UPDATE): rows that refer to these (items,
        # touchpoints, ledger entries) can still be inserted by other workers meanwhile.
        query = query.order_by(table.c.id).with_for_update(key_share=True)
    return query


def blanks(
    session: Session, record: type[_R], model: Any, keys: Mapping[Key, Mapping[str, Any]]
) -> dict[Key, _R]:
    """New records for ``keys``, each with a new id, the columns' defaults and the values
    given for it (columns without a default, such as an order's currency)."""
    if not keys:
        return {}
    table = model.__table__
    names = _NAMES[record]
    at = _AT[record]
    # Each record is made from its values in field order (by keyword, it took twice as long):
    # the columns' defaults, then its key, the values given for it and its id.
    defaults: list[Any] = [
        table.c[name].default.arg
        if isinstance(table.c[name].default, ScalarElementColumnDefault)
        else None
        for name in names
    ]
    ids = _new_ids(session, model, len(keys))
    made: dict[Key, _R] = {}
    for (key, given), new_id in zip(sorted(keys.items()), ids, strict=True):
        values = defaults.copy()
        for name, value in zip(_KEY, key, strict=True):
            values[at[name]] = value
        for name, value in given.items():
            values[at[name]] = value
        values[at["id"]] = new_id
        made[key] = record(*values)
    return made


def _new_ids(session: Session, model: Any, count: int) -> list[int]:
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        # The sequence PostgreSQL made for the table's serial id, named as a constant: named
        # by an expression (pg_get_serial_sequence), it was looked up again for every id.
        # Drawn as one array, in ascending order: a row per id cost the drain more client time.
        drawn = session.scalar(
            text(
                "SELECT array_agg(id ORDER BY id) FROM (SELECT nextval(CAST(:sequence AS "
                "regclass)) AS id FROM generate_series(1, :count)) AS drawn"
            ),
            {"sequence": f"{table.name}_id_seq", "count": count},
        )
        return list(drawn)
    # SQLite: the transaction holds the database's write lock (BEGIN IMMEDIATE), so no other
    # writer can take these ids before the insert.
    top = session.scalar(select(func.max(table.c.id))) or 0
    return list(range(top + 1, top + 1 + count))


def values(row: CustomerRecord | OrderRecord) -> tuple[Any, ...]:
    return _VALUES[type(row)](row)


def write(
    session: Session,
    model: Any,
    stored: Mapping[Key, tuple[Any, ...]],
    rows: Mapping[Key, CustomerRecord] | Mapping[Key, OrderRecord],
) -> None:
    """Insert the rows of ``rows`` whose key ``stored`` (values as read, by key) lacks, in key
    order; UPDATE those whose values differ from ``stored``. ``RowsTaken`` when another worker
    inserted one of the new keys meanwhile."""
    new: list[CustomerRecord | OrderRecord] = []
    changed: list[CustomerRecord | OrderRecord] = []
    for key in sorted(rows):
        row = rows[key]
        before = stored.get(key)
        if before is None:
            new.append(row)
        elif values(row) != before:
            changed.append(row)
    if not new and not changed:
        return
    record = type((new or changed)[0])
    # On PostgreSQL the records themselves are encoded (``insert_objects``): a dict made of
    # each, for the statement, cost a drainer more than encoding it.
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    # Rows go in in key order: two workers inserting the same new rows then wait for each
    # other in one order, never each for the other.
    if on_postgresql:
        inserted = insert_objects(session, model, _COLUMNS[record], new)
    else:
        inserted = insert_ignoring_conflicts(
            session, model, [dict(zip(_NAMES[record], values(row), strict=True)) for row in new]
        )
    if inserted < len(new):
        raise RowsTaken(f"{model.__tablename__}: rows inserted meanwhile by another worker")
    if on_postgresql:
        update_objects_by_id(session, model, _UPDATED[record], changed)
    else:
        # zipped in C: a comprehension testing each name cost more than the comparison
        update_by_id(
            session,
            model,
            [
                dict(zip(_SET[record], _SET_VALUES[record](values(row)), strict=True))
                for row in changed
            ],
        )
