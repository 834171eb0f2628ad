"""An order's items, replaced by the lines of its newest snapshot: edits and removals included.

Most events of an order (paid, fulfilled, delivered) carry the same lines again. Items equal to
the new lines, in the same order, are kept as they are; otherwise all the order's items are
deleted and the lines inserted, in their order (items are read in id order). Keeping them
spares a delete and an insert of every line per event, and the dead rows they left.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, cast

from msgspec.structs import asdict
from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from postpurchase.store.membership import among, among_parameter, rows_among
from postpurchase.store.models import OrderItem
from postpurchase.store.statements import insert_ignoring_conflicts
from postpurchase.stored_events import StoredLine, StoredOrder

_ITEMS = cast(Table, OrderItem.__table__).c
# A line's values as one tuple, in the order its columns are read: how lines are compared.
_LINE_VALUES = itemgetter(*StoredLine.__struct_fields__)
_STORED_ITEMS = select(_ITEMS.order_id, *(_ITEMS[name] for name in StoredLine.__struct_fields__))
# Built once and run by psycopg (``driver_statements``) on PostgreSQL: through SQLAlchemy's
# execution, with a dict made of each row, reading the items cost a drainer more than the
# rest of the items' work.
_PG_STORED_ITEMS = _STORED_ITEMS.where(
    among_parameter("postgresql", _ITEMS.order_id, "order_ids")
).order_by(_ITEMS.id)


def replace_items(
    session: Session, replaced: dict[int, StoredOrder], stored_ids: set[int]
) -> dict[int, list[dict[str, Any]]]:
    """Make each snapshot's lines the items of its order (by order id); only orders among
    ``stored_ids`` (not inserted by this batch) can have items already.

    Returns the lines by order id, as the order's items now are.
    """
    if not replaced:
        return {}
    lines = {
        order_id: [
            # a line's fields are plain values
            asdict(line)
            for line in {line.external_id: line for line in snapshot.lines}.values()
        ]
        for order_id, snapshot in replaced.items()
    }
    stored = _items(session, [order_id for order_id in replaced if order_id in stored_ids])
    changed = [
        order_id
        for order_id, items in stored.items()
        if items != list(map(_LINE_VALUES, lines[order_id]))
    ]
    if changed:
        session.execute(
            delete(OrderItem)
            .where(among(session, OrderItem.order_id, changed))
            .execution_options(synchronize_session=False)
        )
    kept = set(stored) - set(changed)
    insert_ignoring_conflicts(
        session,
        OrderItem,
        [
            {"order_id": order_id, **line}
            for order_id, rows in lines.items()
            if order_id not in kept
            for line in rows
        ],
    )
    return lines


def _items(session: Session, order_ids: list[int]) -> dict[int, list[tuple[Any, ...]]]:
    """The stored items of ``order_ids`` as tuples of line values (``_LINE_VALUES``), in id
    order (orders without any included, with none)."""
    if not order_ids:
        return {}
    found: dict[int, list[tuple[Any, ...]]] = {order_id: [] for order_id in order_ids}
    rows = rows_among(
        session,
        _STORED_ITEMS,
        lambda statement: statement.where(among(session, _ITEMS.order_id, order_ids)).order_by(
            _ITEMS.id
        ),
        _PG_STORED_ITEMS,
        {"order_ids": order_ids},
    )
    for row in rows:
        found[row[0]].append(tuple(row[1:]))
    return found
