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

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from postpurchase.inbox import InboxEntry, add_many_to_inbox

log = logging.getLogger(__name__)

Outcome = int | None | Exception


def write_batch(engine: Engine, entries: list[InboxEntry]) -> list[Outcome]:
    """Store ``entries`` in one transaction; per entry its id, None (duplicate) or the error."""
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # The batch is one statement, so it is a transaction by itself: committed
                # (and flushed) before its answer arrives, without a BEGIN and a COMMIT round
                # trip. SQLite keeps the explicit BEGIN IMMEDIATE its writers rely on.
                autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
                return list(add_many_to_inbox(autocommit, entries))
            with connection.begin():
                return list(add_many_to_inbox(connection, entries))
    except Exception as exc:  # handed to the waiting request, which answers for it
        if len(entries) == 1:
            return [exc]
        # The type only: a database error's text carries the statement's parameters (PII).
        log.warning(
            "inbox batch of %d failed (%s); retrying one by one", len(entries), type(exc).__name__
        )
    outcomes: list[Outcome] = []
    for entry in entries:
        outcomes.extend(write_batch(engine, [entry]))
    return outcomes


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
        while True:
            mine = [item for item in self._queue if item[1].get_loop() is loop]
            if not mine:
                return
            batch = mine[: self._max_batch]
            taken = {id(item) for item in batch}
            self._queue = [item for item in self._queue if id(item) not in taken]
            try:
                outcomes = await run_in_threadpool(
                    write_batch, self._engine, [entry for entry, _ in batch]
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
