"""Claims planned as walks of their index, whatever the tables' statistics say.

Sorting: a claim wants the first rows of a backlog in an index's order: a walk of that index
that stops at the claim's limit. On a table without statistics (new, or not analysed yet)
PostgreSQL guesses that few rows are waiting, and would rather fetch all of them and sort
them (``FOR UPDATE SKIP LOCKED`` sits between the sort and the limit, so the sort takes every
row): on a backlog of a million rows, every claim fetched and sorted all that lay ahead.
Without sorting, the walk is the cheapest plan whatever the statistics say, and with few
rows waiting it costs no more than the sort would.

Bitmap scans: a dispatch claim first looks for rows whose lease ran out among the ``claimed``
and ``sending`` entries of ``ix_touchpoints_due``, and every send leaves one of each behind,
dead (an update of the status is a new entry). A bitmap scan visits each entry and its row,
dead ones included, and never marks one dead: until VACUUM, every claim read them all again
(2.2 ms per look after 20,000 sends, growing with each send). A plain walk of the index marks
the dead entries it meets, and the next walk passes them by.

``without`` turns settings off for the statements planned next in the transaction and gives
them as they were; ``restoring`` puts them back from inside the claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, TextClause, func, select, text


def without(*settings: str) -> TextClause:
    """The statement that turns ``settings`` off for the rest of the transaction and returns
    each as it was, in their order."""
    current = [f"current_setting('{name}')" for name in settings]
    off = [f"set_config('{name}', 'off', true)" for name in settings]
    return text(f"SELECT {', '.join(current + off)}")


WITHOUT_SORT = without("enable_sort")


def restoring(previous: Mapping[str, Any]) -> ColumnElement[bool]:
    """A condition that is always true and, evaluated once as the claim starts running (an
    init plan; the claim has been planned by then), sets each setting back to its value in
    ``previous`` (what ``without`` gave): the statements after the claim are planned as
    before, and the claim needs no round trip of its own to put them back."""
    restore = select(
        func.concat(*(func.set_config(name, value, True) for name, value in previous.items()))
    ).scalar_subquery()
    return restore.is_not(None)
