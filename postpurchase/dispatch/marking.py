"""A chunk's writes while its messages go out: ``sending`` marks, outcomes, lease renewals.

Every message is marked ``sending`` (and the mark committed) right before it goes out, after
its rate limiter let it through; a commit per message was most of the database work of a send.
So a chunk sends in waves: the messages rendered together (at most one per sending thread) go
to the threads at once, each thread waits for its rate limiter, then for the others of its
wave (nothing of the wave is marked while they wait), and the last to get there commits the
marks of the whole wave. Then each thread sends its own message. (A wave of emails the chunk
sends at once from its own thread, see ``running._Sends``, passes its limiters and commits its
marks on that thread, without ``MarkWave``.) The outcomes waiting to be
recorded (answers, skips) go into the same commit, so a steady chunk commits about once per
wave and no more. On PostgreSQL such a commit is one statement in autocommit (one UPDATE of
the marked rows and those with an outcome: one round trip, where BEGIN, a statement per kind
of outcome, the marks and COMMIT were four or more), handed to psycopg as SQL written once
(``store.wave_commit``) and planned once per chunk; one that renews the lease or records an
opt-out is still a transaction of a statement per step, as every commit is on SQLite.

``ChunkWriter`` holds what waits to be recorded and makes the commits, all on one database
connection it keeps for the chunk (taking one from the pool for each commit cost a round trip
to check it, about one statement more per wave); ``MarkWave`` is one wave's meeting point.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Connection

from postpurchase.dispatch.outcomes import Outcome
from postpurchase.dispatch.sending import ChunkLease, outcome_rows, record_outcomes
from postpurchase.store.claims import mark_sending_many
from postpurchase.store.database import SessionFactory, engine_of, unprepared
from postpurchase.store.wave_commit import keep_plans, plans_as_before, release_and_mark


class ChunkWriter:
    """The commits of one chunk: each renews the lease when due, records the outcomes waiting,
    and marks the ids it is given. Safe to share by the chunk's threads, which commit one at
    a time on the writer's connection; ``close`` gives it back to the pool."""

    def __init__(
        self,
        store: SessionFactory,
        lease: ChunkLease,
        lease_length: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._lease = lease
        self._lease_length = lease_length
        self._clock = clock
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one transaction at a time on the connection
        self._connection: Connection | None = None
        self._autocommitting = False
        self._plans_before: str | None = None  # once the connection keeps its plans
        self._waiting: list[Outcome] = []
        self.counts: Counter[str] = Counter()  # per kind, the rows actually recorded

    def add(self, outcomes: Iterable[Outcome]) -> None:
        """Outcomes to record with the next commit."""
        with self._lock:
            self._waiting.extend(outcomes)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def record(self, *, renew: bool = False) -> None:
        """Commit the outcomes waiting, if any; with ``renew``, also when only the lease is
        due (the sends wait, for the rate limiter say: the rows stay ours while this runs)."""
        if self.waiting() or (renew and self._lease.due()):
            self.commit([])

    def commit(self, mark: Sequence[int]) -> set[int]:
        """One transaction: renew the lease if due, record the outcomes waiting, mark ``mark``
        ``sending``. Returns the ids marked (the others are not this worker's any more and
        must not be sent). Raises what the database raised; the outcomes then wait still."""
        with self._lock:
            taken, self._waiting = self._waiting, []
        try:
            with self._writing:
                connection = self._connect()
                if self._at_once(connection, taken):
                    counts, marked = self._commit_at_once(connection, taken, mark)
                else:
                    counts, marked = self._commit_in_steps(connection, taken, mark)
        except BaseException:
            with self._lock:
                self._waiting[:0] = taken
            raise
        with self._lock:
            self.counts.update(counts)
        return marked

    def _at_once(self, connection: Connection, taken: Sequence[Outcome]) -> bool:
        """Whether this commit can be one statement: on PostgreSQL, with no lease to renew
        (whose rows include those recorded and marked) and no opt-out to record (a row
        of another table)."""
        return (
            connection.dialect.name == "postgresql"
            and not self._lease.due()
            and not any(outcome.opted_out_phone for outcome in taken)
        )

    def _commit_at_once(
        self, connection: Connection, taken: Sequence[Outcome], mark: Sequence[int]
    ) -> tuple[Counter[str], set[int]]:
        """The commit as one statement in autocommit: its own transaction, committed when
        it returns (so the marks are before anything is sent), in one round trip."""
        self._autocommit(connection, True)
        if self._plans_before is None:
            self._plans_before = keep_plans(connection)
        groups = outcome_rows(taken)
        released, marked = release_and_mark(
            connection,
            [(rows, also_from) for _, rows, also_from in groups],
            mark,
            worker=self._lease.worker,
            lease_until=self._clock() + self._lease_length,
        )
        counts: Counter[str] = Counter()
        for (kind, _, _), count in zip(groups, released, strict=True):
            counts[kind] += count
        return counts, marked

    def _commit_in_steps(
        self, connection: Connection, taken: Sequence[Outcome], mark: Sequence[int]
    ) -> tuple[Counter[str], set[int]]:
        """The commit as a transaction of a statement per step."""
        self._autocommit(connection, False)
        with (
            self._planned_at_each_run(connection),
            self._store(bind=connection) as session,
            session.begin(),
        ):
            self._lease.renew_if_due(session)
            counts = record_outcomes(session, self._lease.worker, taken, now=self._clock())
            marked = (
                mark_sending_many(
                    session,
                    mark,
                    worker=self._lease.worker,
                    lease_until=self._clock() + self._lease_length,
                )
                if mark
                else set()
            )
        return counts, marked

    @contextmanager
    def _planned_at_each_run(self, connection: Connection) -> Iterator[None]:
        """Inside, while the connection keeps its plans (``keep_plans``), psycopg prepares
        nothing: the statements of a commit in steps are planned at each run, as on the pool's
        connections, none with a plan kept for a chunk."""
        if self._plans_before is None:
            yield
            return
        with unprepared(connection):
            yield

    def _autocommit(self, connection: Connection, on: bool) -> None:
        if self._autocommitting != on:
            level = "AUTOCOMMIT" if on else connection.default_isolation_level
            connection.execution_options(isolation_level=level)
            self._autocommitting = on

    def close(self) -> None:
        """Give the connection back, planning as it did before; a later commit takes
        another."""
        with self._writing:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            if self._plans_before is not None and not connection.invalidated:
                self._autocommit(connection, True)  # the setting must outlive the pool's rollback
                plans_as_before(connection, self._plans_before)
            connection.close()

    def _connect(self) -> Connection:
        connection = self._connection
        if connection is not None and connection.invalidated:  # an error left it unusable
            connection.close()
        if connection is None or connection.closed:
            connection = self._connection = engine_of(self._store).connect()
            self._autocommitting = False  # as the pool gives connections back
            self._plans_before = None
        return connection


class MarkWave:
    """The ``sending`` marks of one wave of ``size`` messages: committed together once each
    of its threads has asked for its mark or withdrawn (its rate limiter failed)."""

    def __init__(self, writer: ChunkWriter, size: int) -> None:
        self._writer = writer
        self._left = size
        self._asked: list[int] = []
        self._lock = threading.Lock()
        self._written = threading.Event()
        self._marked: set[int] = set()
        self._error: BaseException | None = None

    def mark(self, touchpoint_id: int) -> bool:
        """Wait for the wave, then whether the touchpoint was marked (committed): False when
        the worker no longer holds it (then it must not be sent). Raises what the database
        raised, in every thread of the wave: nothing of the wave is sent."""
        self._arrive(touchpoint_id)
        self._written.wait()
        if self._error is not None:
            raise self._error
        return touchpoint_id in self._marked

    def withdraw(self) -> None:
        """This thread's message is not sent: the wave does not wait for it."""
        self._arrive(None)

    def _arrive(self, touchpoint_id: int | None) -> None:
        with self._lock:
            if touchpoint_id is not None:
                self._asked.append(touchpoint_id)
            self._left -= 1
            last = self._left == 0
        if not last:
            return
        try:  # the last to arrive writes for all
            if self._asked:
                self._marked = self._writer.commit(self._asked)
        except BaseException as exc:
            self._error = exc
        finally:  # whatever happened, no thread waits forever
            self._written.set()
