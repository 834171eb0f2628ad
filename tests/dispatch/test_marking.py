"""Sending threads that mark at the same time share a commit; each learns about its own row."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fakes.fixtures import add_customer, add_order, add_touchpoint
from sqlalchemy import event, select, update

from postpurchase.dispatch.marking import MarkGroup
from postpurchase.dispatch.sending import ChunkLease
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import engine_of, transaction
from postpurchase.store.models import Channel, Touchpoint, TouchpointStatus

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _claimed(store, count, worker="w"):
    with transaction(store) as session:
        for _ in range(count):
            customer = add_customer(session)
            order = add_order(session, customer)
            add_touchpoint(session, customer, order, "delivery_checkin", Channel.EMAIL, NOW)
        return claim_due_touchpoints(session, worker=worker, now=NOW, limit=count, lease=LEASE)


def _statuses(store):
    with store() as session:
        return dict(session.execute(select(Touchpoint.id, Touchpoint.status)).all())


def test_marks_asked_together_share_commits_and_each_gets_its_answer(store):
    ids = _claimed(store, 12)
    with transaction(store) as session:  # one row went to another run meanwhile
        session.execute(update(Touchpoint).where(Touchpoint.id == ids[0]).values(claimed_by="x"))
    commits = []
    event.listen(engine_of(store), "commit", lambda conn: commits.append(1))
    marks = MarkGroup(store, ChunkLease("w", ids, LEASE, lambda: NOW), LEASE, lambda: NOW)
    start = threading.Barrier(4)

    def mark(tp_id):
        if tp_id in ids[:4]:
            start.wait()  # four threads ask at once
        return marks.mark(tp_id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = dict(zip(ids, pool.map(mark, ids), strict=True))

    assert answers == {tp_id: tp_id != ids[0] for tp_id in ids}
    assert len(commits) < len(ids)
    statuses = _statuses(store)
    assert statuses[ids[0]] == TouchpointStatus.CLAIMED
    assert all(statuses[tp_id] == TouchpointStatus.SENDING for tp_id in ids[1:])


def test_a_database_error_reaches_every_thread_of_the_batch_and_marks_nothing(store):
    ids = _claimed(store, 1)
    marks = MarkGroup(store, ChunkLease("w", ids, LEASE, lambda: NOW), LEASE, lambda: NOW)

    def fail(*_):
        raise RuntimeError("database away")

    event.listen(engine_of(store), "before_cursor_execute", fail)
    try:
        with pytest.raises(RuntimeError, match="database away"):
            marks.mark(ids[0])
    finally:
        event.remove(engine_of(store), "before_cursor_execute", fail)
    assert _statuses(store)[ids[0]] == TouchpointStatus.CLAIMED
    assert marks.mark(ids[0]) is True  # the group is not stuck
