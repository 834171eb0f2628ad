"""Claims planned without sorting, whatever the tables' statistics say.

A claim wants the first rows of a backlog in an index's order: a walk of that index that
stops at the claim's limit. On a table without statistics (new, or not analysed yet)
PostgreSQL guesses that few rows are waiting, and would rather fetch all of them and sort
them (``FOR UPDATE SKIP LOCKED`` sits between the sort and the limit, so the sort takes every
row): on a backlog of a million rows, every claim fetched and sorted all that lay ahead.
Without sorting, the walk is the cheapest plan whatever the statistics say, and with few
rows waiting it costs no more than the sort would.

``WITHOUT_SORT`` turns sorting off for the statements planned next in the transaction and
gives the setting as it was; the claim puts it back with ``restoring_sort``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select, text

WITHOUT_SORT = text("SELECT current_setting('enable_sort'), set_config('enable_sort', 'off', true)")


def restoring_sort(previous: Any) -> ColumnElement[bool]:
    """A condition that is always true and, evaluated once as the claim starts running (an
    init plan; the claim has been planned by then), sets ``enable_sort`` back to
    ``previous`` (what ``WITHOUT_SORT`` gave): the statements after the claim are planned as
    before, and the claim needs no round trip of its own to put the setting back."""
    restore = select(func.set_config("enable_sort", previous, True)).scalar_subquery()
    return restore.is_not(None)
