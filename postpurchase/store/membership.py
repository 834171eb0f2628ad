"""``column IN (values)`` for the long lists a batch works on, cheap on both backends.

On PostgreSQL an ``IN`` list of a thousand values is a thousand placeholders, and psycopg
re-parses the statement for every new length of list. One array parameter (``= ANY(...)``,
or a join on ``unnest`` for keys of several columns) keeps the statement short and the same from
batch to batch. SQLite has no arrays: it gets the plain ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, func, select, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session


def among(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """Whether ``column`` is one of ``values``."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def keys_among(
    session: Session, columns: Sequence[Any], keys: Collection[tuple[Any, ...]]
) -> ColumnElement[bool]:
    """Whether the tuple of ``columns`` is one of ``keys`` (tuples of as many values)."""
    if session.get_bind().dialect.name != "postgresql":
        return tuple_(*columns).in_(keys)
    names = [f"k{i}" for i in range(len(columns))]
    wanted = (
        func.unnest(
            *(
                bindparam(None, [key[i] for key in keys], type_=postgresql.ARRAY(column.type))
                for i, column in enumerate(columns)
            )
        )
        .table_valued(*names)
        .render_derived()
    )
    return tuple_(*columns).in_(select(*(wanted.c[name] for name in names)))
