"""The SQL statements an engine sends while inside ``statements_sent``: tests that count the
round trips a batch makes read them from here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def statements_sent(engine: Engine, wanted: Callable[[str], bool]) -> Iterator[list[str]]:
    """The statements ``engine`` sends while inside for which ``wanted`` holds, in order."""
    sent: list[str] = []

    def record(conn, cursor, statement, *_):
        if wanted(statement):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
