"""``column IN (values)`` for the long lists a batch works on, cheap on both backends.

On PostgreSQL an ``IN`` list of a thousand values is a thousand placeholders, and psycopg
re-parses the statement for every new length of list. One array parameter (``= ANY(...)``,
or a join on ``unnest`` for keys of two columns) keeps the statement short and the same from
batch to batch. SQLite has no arrays: it gets the plain ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Collection
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


def pairs_among(
    session: Session, first: Any, second: Any, pairs: Collection[tuple[Any, Any]]
) -> ColumnElement[bool]:
    """Whether ``(first, second)`` is one of ``pairs``."""
    if session.get_bind().dialect.name != "postgresql":
        return tuple_(first, second).in_(pairs)
    wanted = (
        func.unnest(
            bindparam(None, [a for a, _ in pairs], type_=postgresql.ARRAY(first.type)),
            bindparam(None, [b for _, b in pairs], type_=postgresql.ARRAY(second.type)),
        )
        .table_valued("a", "b")
        .render_derived()
    )
    return tuple_(first, second).in_(select(wanted.c.a, wanted.c.b))
