"""The SQL statements an engine sends while inside ``statements_sent``: tests that count the
round trips a batch makes read them from here, and tests that plan a statement as it was sent
take its parameters with it (``statements_sent_with_parameters``).

Statements the store runs through the driver (``driver_statements``) do not pass through
SQLAlchemy's cursor events, so they are not seen here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine

Sent = TypeVar("Sent")


@contextmanager
def statements_sent(engine: Engine, wanted: Callable[[str], bool]) -> Iterator[list[str]]:
    """The statements ``engine`` sends while inside for which ``wanted`` holds, in order."""
    with _recording(engine, wanted, lambda statement, _parameters: statement) as sent:
        yield sent


@contextmanager
def statements_sent_with_parameters(
    engine: Engine, wanted: Callable[[str], bool]
) -> Iterator[list[tuple[str, Any]]]:
    """As ``statements_sent``, each with the parameters it was sent with (a list of them when
    the driver ran it once per row)."""
    with _recording(engine, wanted, lambda statement, parameters: (statement, parameters)) as sent:
        yield sent


@contextmanager
def _recording(
    engine: Engine, wanted: Callable[[str], bool], entry: Callable[[str, Any], Sent]
) -> Iterator[list[Sent]]:
    sent: list[Sent] = []

    def record(conn, cursor, statement, parameters, *_):
        if wanted(statement):
            sent.append(entry(statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
