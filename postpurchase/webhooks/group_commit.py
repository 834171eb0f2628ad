"""Group commit: concurrent webhooks share one inbox transaction, each answered after it.

A commit costs far more than an INSERT (a disk flush on PostgreSQL; the single write lock on
SQLite), so one commit per webhook caps intake at a few hundred a second. Here requests queue
their entry and wait; one drain task per event loop writes everything queued so far in one
transaction, resolves each waiter with its own result, and repeats while more arrived
meanwhile. A lone request is written at once (no timer, no added delay); under load, batches
grow by themselves. Nothing is acknowledged before its transaction has committed.

If a batch fails, its entries are retried one transaction each, so one bad entry cannot fail
the others; an entry that still fails gets the exception (the route answers 503 for a
database error).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from postpurchase.inbox import (
    POSTGRES_INSERT,
    InboxEntry,
    add_many_to_inbox,
    add_many_with_driver,
)

log = logging.getLogger(__name__)

Outcome = int | None | Exception

# The threads that write batches (one batch at a time per event loop), shared by every
# committer of the process and started as needed. Handing a batch to them costs about half
# the CPU of a hop through anyio's thread pool (run_in_threadpool); with small batches that
# hop is a noticeable share of each webhook.
_WRITERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="inbox-writer")


class BatchWriter:
    """Writes one drain's batches, on one connection checked out at the first of them.

    A drain under load writes several batches in a row: the pool's checkout (with its ping,
    a round trip to the server) and check-in then come once per run of batches, not once per
    batch. Used by one thread at a time; the lock makes ``close`` wait for a write in flight.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def write(self, entries: list[InboxEntry]) -> list[Outcome]:
        """Store ``entries`` in one transaction; per entry its id, None (duplicate) or the
        error."""
        with self._lock:
            return self._write(entries)

    def _write(self, entries: list[InboxEntry]) -> list[Outcome]:
        try:
            if self._connection is None:
                self._connection = self._engine.connect()
            if self._connection.dialect.name == "postgresql":
                return _write_postgres(self._connection, entries)
            with self._connection.begin():  # SQLite: the BEGIN IMMEDIATE its writers rely on
                return list(add_many_to_inbox(self._connection, entries))
        except Exception as exc:  # handed to the waiting request, which answers for it
            self._close()  # the next write starts on a connection the pool checks again
            if len(entries) == 1:
                return [exc]
            # The type only: a database error's text carries the statement's parameters (PII).
            log.warning(
                "inbox batch of %d failed (%s); retrying one by one",
                len(entries),
                type(exc).__name__,
            )
        outcomes: list[Outcome] = []
        for entry in entries:
            outcomes.extend(self._write([entry]))
        return outcomes

    def close(self) -> None:
        """Return the connection to the pool (no round trip: it holds no transaction)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _write_postgres(connection: Connection, entries: list[InboxEntry]) -> list[Outcome]:
    """The batch as one statement on psycopg's own connection, in autocommit.

    One statement is a transaction by itself: committed (and flushed) before its answer
    arrives, without a BEGIN and a COMMIT round trip. Handed to psycopg directly, not through
    SQLAlchemy's statement handling, which cost more client CPU than the insert. The pool
    still checks the connection out (and pings it first); the driver's errors become
    SQLAlchemy's, as the route expects, and a lost connection is dropped from the pool.
    """
    dialect = connection.dialect
    driver: Any = connection.connection.driver_connection  # psycopg.Connection
    try:
        driver.autocommit = True
        try:
            return list(add_many_with_driver(driver, dialect, entries))
        finally:
            driver.autocommit = False  # as the pool hands connections out
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, connection.connection, None)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            POSTGRES_INSERT,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=dialect,
        ) from exc


class GroupCommitter:
    """Queues inbox entries from concurrent requests and commits them in shared batches."""

    def __init__(self, engine: Engine, *, max_batch: int = 500) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[tuple[InboxEntry, asyncio.Future[int | None]]] = []
        self._drains: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    async def add(self, entry: InboxEntry) -> int | None:
        """Store ``entry``; returns its new id, or None if its dedupe key was already held.

        Returns only after the transaction holding it has committed. Raises SQLAlchemyError
        when it could not be stored.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int | None] = loop.create_future()
        self._queue.append((entry, waiter))
        drain = self._drains.get(loop)
        if drain is None or drain.done():
            self._drains[loop] = loop.create_task(self._drain())
        # shield: a client hanging up must not cancel the write others share.
        return await asyncio.shield(waiter)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        writer = BatchWriter(self._engine)
        try:
            await self._write_queued(loop, writer)
        except BaseException:
            # Cancelled with a write in flight: closed by a writer thread once it is done.
            _WRITERS.submit(writer.close)
            raise
        writer.close()

    async def _write_queued(self, loop: asyncio.AbstractEventLoop, writer: BatchWriter) -> None:
        while True:
            mine = [item for item in self._queue if item[1].get_loop() is loop]
            if not mine:
                return
            batch = mine[: self._max_batch]
            taken = {id(item) for item in batch}
            self._queue = [item for item in self._queue if id(item) not in taken]
            try:
                outcomes = await loop.run_in_executor(
                    _WRITERS, writer.write, [entry for entry, _ in batch]
                )
            except BaseException as exc:  # a bug or cancellation: nobody may wait forever
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError("cancelled")
                        )
                raise
            for (_, waiter), outcome in zip(batch, outcomes, strict=True):
                if waiter.done():
                    continue
                if isinstance(outcome, Exception):
                    waiter.set_exception(outcome)
                else:
                    waiter.set_result(outcome)
