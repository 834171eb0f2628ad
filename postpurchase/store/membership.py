"""``column IN (values)`` for the long lists a batch works on, cheap on both backends.

On PostgreSQL an ``IN`` list of a thousand values is a thousand placeholders, and psycopg
re-parses the statement for every new length of list. One array parameter (``= ANY(...)``,
or a lookup per pair from ``unnest`` for keys of two columns) keeps the statement short and
the same from batch to batch, and its plan the same whether the tables have statistics or
not. SQLite has no arrays: it gets the plain ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, func, select, true, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session


def among(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """Whether ``column`` is one of ``values``."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        # Through a subquery (ARRAY(SELECT unnest(...))), the planner takes the list for a
        # short one whatever its length. Given as it is, a few hundred values on a column of a
        # table without statistics looked like most of the table, and the lookup became a
        # scan of all of it, every batch, growing with the table.
        listed = func.array(select(func.unnest(array)).scalar_subquery())
        return column == any_(listed)  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def pairs_among(
    session: Session, first: Any, second: Any, pairs: Collection[tuple[Any, Any]]
) -> ColumnElement[bool]:
    """Whether ``(first, second)`` is one of ``pairs``; on PostgreSQL the two columns must be
    those of a unique key of a table whose primary key is ``id``."""
    if session.get_bind().dialect.name != "postgresql":
        return tuple_(first, second).in_(pairs)
    wanted = (
        func.unnest(
            bindparam(None, [a for a, _ in pairs], type_=postgresql.ARRAY(first.type)),
            bindparam(None, [b for _, b in pairs], type_=postgresql.ARRAY(second.type)),
        )
        .table_valued("a", "b")
        .render_derived(name="k")
    )
    # Each pair is looked up on its own through the unique key (a lateral subquery that OFFSET
    # keeps apart, so the planner cannot make one join of it), and the rows are then taken by
    # id: as a join, tables without statistics were scanned whole, every batch.
    table = first.table
    found = select(table.c.id).where(first == wanted.c.a, second == wanted.c.b).offset(0)
    each = found.lateral("found")
    ids = select(each.c.id).select_from(wanted).join(each, true())
    return table.c.id == any_(func.array(ids.scalar_subquery()))  # type: ignore[no-any-return]
