"""The ``sending`` marks of a chunk's sending threads, committed together when they coincide.

Every message is marked ``sending`` (and the mark committed) right before it goes out, after
its rate limiter let it through; a commit per message was most of the database work of a send.
Threads that ask at the same time now share one transaction: the first to ask writes every
mark waiting at that moment, the others wait for that commit, then each gets its own answer.
A lone thread is written at once (no timer, no added delay), so no message is marked earlier
than before or waits marked for the limiter, and none is sent before its mark is committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from postpurchase.dispatch.sending import ChunkLease
from postpurchase.store.claims import mark_sending_many
from postpurchase.store.database import SessionFactory, transaction


class MarkGroup:
    """Marks touchpoints ``sending`` for one chunk's threads, several per commit if they ask
    together."""

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
        self._changed = threading.Condition()
        self._waiting: list[int] = []
        self._answers: dict[int, bool | Exception] = {}
        self._writing = False

    def mark(self, touchpoint_id: int) -> bool:
        """Mark one touchpoint and commit; False when the worker no longer holds it (then it
        must not be sent). Raises what the database raised."""
        with self._changed:
            self._waiting.append(touchpoint_id)
            while self._writing and touchpoint_id not in self._answers:
                self._changed.wait()
            leading = touchpoint_id not in self._answers
            if leading:
                batch, self._waiting = self._waiting, []
                self._writing = True
        if leading:
            self._write(batch)
        with self._changed:
            answer = self._answers.pop(touchpoint_id)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _write(self, batch: list[int]) -> None:
        answers: dict[int, bool | Exception] = {}
        try:
            with transaction(self._store) as session:
                self._lease.renew_if_due(session)
                ours = mark_sending_many(
                    session,
                    batch,
                    worker=self._lease.worker,
                    lease_until=self._clock() + self._lease_length,
                )
            answers = {tp_id: tp_id in ours for tp_id in batch}
        except Exception as exc:  # each waiting thread gets it: nothing of the batch is sent
            answers = dict.fromkeys(batch, exc)
        finally:  # whatever happened, no thread waits forever
            with self._changed:
                for tp_id in batch:
                    self._answers[tp_id] = answers.get(tp_id, RuntimeError("marking stopped"))
                self._writing = False
                self._changed.notify_all()
