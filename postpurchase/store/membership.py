"""``column IN (values)`` for the long lists a batch works on, cheap on both backends.

On PostgreSQL an ``IN`` list of a thousand values is a thousand placeholders, and psycopg
re-parses the statement for every new length of list. One array parameter (``= ANY(...)``,
or a lookup per pair from ``unnest`` for keys of several columns) keeps the statement short and
the same from batch to batch, and its plan the same whether the tables have statistics or
not. SQLite has no arrays: it gets the plain ``IN`` list.

Arrays of plain integers or strings are sent as PostgreSQL's text form of an array
(``{1,2,3}``, ``{"a","b"}``), built in one pass, and cast to their type in the statement as
before: psycopg adapts a list one element at a time in Python, which cost the drain about three
times as much client time (a few percent of a drainer's CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVarTuple, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    func,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from postpurchase.store.driver_statements import fetch_all

_Row = TypeVarTuple("_Row")


def among(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """Whether ``column`` is one of ``values``."""
    if session.get_bind().dialect.name == "postgresql":
        return _any_of(column, bindparam(None, list(values), type_=array_of(column.type)))
    return column.in_(values)  # type: ignore[no-any-return]


def among_parameter(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """``among`` for a statement built once: the values are the parameter ``name`` (a list)
    given when the statement runs."""
    if dialect == "postgresql":
        return _any_of(column, bindparam(name, type_=array_of(column.type)))
    return column.in_(bindparam(name, expanding=True))  # type: ignore[no-any-return]


def _any_of(column: Any, array: BindParameter[Any]) -> ColumnElement[bool]:
    # Through a subquery (ARRAY(SELECT unnest(...))), the planner takes the list for a
    # short one whatever its length. Given as it is, a few hundred values on a column of a
    # table without statistics looked like most of the table, and the lookup became a
    # scan of all of it, every batch, growing with the table.
    listed = func.array(select(func.unnest(array)).scalar_subquery())
    return column == any_(listed)  # type: ignore[no-any-return]


def keys_among(
    session: Session, columns: Sequence[Any], keys: Collection[tuple[Any, ...]]
) -> ColumnElement[bool]:
    """Whether the tuple of ``columns`` is one of ``keys`` (tuples of as many values); on
    PostgreSQL ``columns[0]`` must be a column of a table whose primary key is ``id``, and the
    columns those of an index of it (a unique key, as a rule)."""
    if session.get_bind().dialect.name != "postgresql":
        return tuple_(*columns).in_(keys)
    return _keys_among_arrays(
        columns,
        [
            bindparam(None, [key[i] for key in keys], type_=array_of(column.type))
            for i, column in enumerate(columns)
        ],
    )


def keys_among_parameter(dialect: str, columns: Sequence[Any], name: str) -> ColumnElement[bool]:
    """``keys_among`` for a statement built once: the keys are given when it runs, as
    ``key_parameters(dialect, name, keys)``."""
    if dialect != "postgresql":
        return tuple_(*columns).in_(bindparam(name, expanding=True))
    return _keys_among_arrays(
        columns,
        [bindparam(f"{name}_{i}", type_=array_of(column.type)) for i, column in enumerate(columns)],
    )


def key_parameters(dialect: str, name: str, keys: Collection[tuple[Any, ...]]) -> dict[str, Any]:
    """The parameters of ``keys_among_parameter(dialect, columns, name)`` for ``keys``: on
    PostgreSQL one array per column, else the keys as they are."""
    if dialect != "postgresql":
        return {name: list(keys)}
    width = len(next(iter(keys))) if keys else 0
    return {f"{name}_{i}": [key[i] for key in keys] for i in range(width)}


def _keys_among_arrays(
    columns: Sequence[Any], arrays: Sequence[BindParameter[Any]]
) -> ColumnElement[bool]:
    names = [f"k{i}" for i in range(len(columns))]
    wanted = func.unnest(*arrays).table_valued(*names).render_derived(name="k")
    # Each key is looked up on its own through the index (a lateral subquery that OFFSET keeps
    # apart, so the planner cannot make one join of it), and the rows are then taken by id: as
    # a join, tables without statistics were scanned whole, every batch.
    table = columns[0].table
    found = (
        select(table.c.id)
        .where(*(column == wanted.c[name] for column, name in zip(columns, names, strict=True)))
        .offset(0)
    )
    each = found.lateral("found")
    ids = select(each.c.id).select_from(wanted).join(each, true())
    return table.c.id == any_(func.array(ids.scalar_subquery()))  # type: ignore[no-any-return]


def each_among(
    session: Session, statement: Select[*_Row], column: Any, values: Collection[Any]
) -> Select[*_Row]:
    """``statement`` (a select from ``column``'s table, grouped by ``column`` if grouped)
    restricted to the rows whose ``column`` is one of ``values``, its columns as it selects
    them. On PostgreSQL each value is looked up on its own through ``column``'s index.

    For a column of a table that is not yet analysed and still small (under about a hundred
    pages): ``among`` had the whole table scanned, each row checked against every value of
    the list in turn (a thousand values made that 25 ms on 8,000 rows, the ledger of a new
    shop at a few thousand orders), until the table grew past the size where the index
    took over. Once analysed, or bigger, each lookup costs about a fifth of a microsecond
    more per value than ``among``'s one index scan.
    """
    if session.get_bind().dialect.name != "postgresql":
        return statement.where(column.in_(values))
    return _each(statement, column, bindparam(None, list(set(values)), type_=array_of(column.type)))


def each_among_parameter(statement: Select[*_Row], column: Any, name: str) -> Select[*_Row]:
    """``each_among`` on PostgreSQL for a statement built once: the values are the parameter
    ``name`` (a list, each value once) given when the statement runs."""
    return _each(statement, column, bindparam(name, type_=array_of(column.type)))


def _each(statement: Select[*_Row], column: Any, values: BindParameter[Any]) -> Select[*_Row]:
    wanted = func.unnest(values).table_valued("value").render_derived(name="k")
    # OFFSET 0 keeps the lateral subquery apart, so the planner cannot make one join of it.
    found = statement.where(column == wanted.c.value).offset(0).lateral("found")
    each = select(*found.c).select_from(wanted).join(found, true())
    return cast("Select[*_Row]", each)  # the same columns as ``statement``


def rows_among(
    session: Session,
    statement: Select[Any],
    restricted: Callable[[Any], Any],
    on_postgresql: Select[Any],
    lists: Mapping[str, Collection[int] | Collection[str]],
) -> Iterable[Sequence[Any]]:
    """The rows of ``statement`` restricted to the values of ``lists`` (ids, codes): on
    PostgreSQL those of ``on_postgresql`` (the same read built once, its lists as
    parameters) run by psycopg, as plain values; else ``restricted(statement)`` run by
    SQLAlchemy.

    For the reads a drainer makes for every batch: SQLAlchemy's handling of each execution,
    and building the statement again each time, cost more CPU than reading their rows."""
    if session.get_bind().dialect.name == "postgresql":
        params = {name: array_literal(values) for name, values in lists.items()}
        return fetch_all(session.connection(), on_postgresql, params)
    return session.execute(restricted(statement))


def array_literal(values: Collection[Any]) -> Any:
    """``values`` as PostgreSQL's text form of an array when they are all ``int`` or all
    ``str`` (for a parameter the statement casts to the array's type); else as a list, for
    psycopg to adapt (``None`` among them, say)."""
    if not values:
        return "{}"
    try:
        # int.__repr__ and str.replace refuse any other type (TypeError): no check per value
        return "{" + ",".join(map(int.__repr__, values)) + "}"
    except TypeError:
        pass
    try:
        # Each element quoted, only ``"`` and ``\`` escaped: inside quotes anything else
        # (commas, braces, spaces, the word NULL) is taken as it is.
        quoted = [str.replace(str.replace(v, "\\", "\\\\"), '"', '\\"') for v in values]
    except TypeError:
        return list(values)
    return '{"' + '","'.join(quoted) + '"}'


# Types whose values psycopg sends as they are: their text form is the array's element.
_PLAIN = (Integer, BigInteger, SmallInteger, String, Text)


def array_of(item_type: TypeEngine[Any]) -> TypeEngine[Any]:
    """The type of an array parameter of ``item_type`` values on PostgreSQL: sent as one text
    literal for plain integer and string types (see ``array_literal``)."""
    if type(item_type) in _PLAIN:
        return _ArrayLiteral(item_type)
    return postgresql.ARRAY(item_type)


class _ArrayLiteral(TypeDecorator[Any]):
    """``postgresql.ARRAY`` (same SQL, same cast) whose value is bound by ``array_literal``."""

    impl = postgresql.ARRAY
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        # Replaces ARRAY's own processor, which would walk the literal as a list.
        return _bound


def _bound(values: Collection[Any] | None) -> Any:
    return None if values is None else array_literal(values)
