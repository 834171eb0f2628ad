"""A wave of sends commits its marks once, with the outcomes waiting; each thread learns
about its own row."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fakes.fixtures import add_customer, add_order, add_touchpoint
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import DBAPIError

from postpurchase.dispatch.marking import ChunkWriter, MarkWave
from postpurchase.dispatch.outcomes import Outcome
from postpurchase.dispatch.sending import ChunkLease
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import engine_of, transaction
from postpurchase.store.models import Channel, Touchpoint, TouchpointStatus
from postpurchase.store.wave_commit import wave_statement

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _claimed(store, count, worker="w"):
    with transaction(store) as session:
        for _ in range(count):
            customer = add_customer(session)
            order = add_order(session, customer)
            add_touchpoint(session, customer, order, "delivery_checkin", Channel.EMAIL, NOW)
        return claim_due_touchpoints(session, worker=worker, now=NOW, limit=count, lease=LEASE)


@pytest.fixture
def writer_for(store):
    """Writers for the test's chunks, their connections given back at its end."""
    writers = []

    def make(ids):
        writers.append(
            ChunkWriter(store, ChunkLease("w", ids, LEASE, lambda: NOW), LEASE, lambda: NOW)
        )
        return writers[-1]

    yield make
    for writer in writers:
        writer.close()


def _statuses(store):
    with store() as session:
        return dict(session.execute(select(Touchpoint.id, Touchpoint.status)).all())


def _commits(store):
    """How many transactions wrote the rows ``ids`` from now on, when called with them: on
    PostgreSQL the transactions that last wrote each row (its ``xmin``: a one-statement
    commit in autocommit goes to the driver, not through SQLAlchemy's commit), on SQLite
    SQLAlchemy's commits."""
    engine = engine_of(store)
    if engine.dialect.name == "postgresql":

        def writers(ids):
            with engine.connect() as conn:
                return conn.execute(
                    text("SELECT count(DISTINCT xmin::text) FROM touchpoints WHERE id = ANY(:ids)"),
                    {"ids": list(ids)},
                ).scalar()

        return writers
    commits = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    return lambda ids: len(commits)


def test_each_wave_commits_once_and_each_thread_gets_its_answer(store, writer_for):
    ids = _claimed(store, 12)
    with transaction(store) as session:  # one row went to another run meanwhile
        session.execute(update(Touchpoint).where(Touchpoint.id == ids[0]).values(claimed_by="x"))
    writer = writer_for(ids)
    commits = _commits(store)
    waves = [MarkWave(writer, 4) for _ in range(3)]
    wave_of = {tp_id: waves[n // 4] for n, tp_id in enumerate(ids)}

    with ThreadPoolExecutor(max_workers=4) as pool:  # a wave's threads run at once
        answers = dict(zip(ids, pool.map(lambda i: wave_of[i].mark(i), ids), strict=True))

    assert answers == {tp_id: tp_id != ids[0] for tp_id in ids}
    assert commits(ids[1:]) == 3
    statuses = _statuses(store)
    assert statuses[ids[0]] == TouchpointStatus.CLAIMED
    assert all(statuses[tp_id] == TouchpointStatus.SENDING for tp_id in ids[1:])


def test_outcomes_waiting_go_into_the_next_marks_commit(store, writer_for):
    ids = _claimed(store, 2)
    writer = writer_for(ids)
    writer.add([Outcome.skipped(ids[0], "smart sending")])
    commits = _commits(store)

    assert MarkWave(writer, 1).mark(ids[1]) is True
    assert commits(ids) == 1
    assert writer.counts == {"skipped": 1}
    assert _statuses(store) == {ids[0]: TouchpointStatus.SKIPPED, ids[1]: TouchpointStatus.SENDING}


def test_a_withdrawn_thread_does_not_hold_the_wave(store, writer_for):
    ids = _claimed(store, 1)
    wave = MarkWave(writer_for(ids), 2)
    wave.withdraw()  # its limiter failed
    assert wave.mark(ids[0]) is True


def test_a_database_error_reaches_every_thread_and_marks_nothing(store, writer_for):
    ids = _claimed(store, 3)
    writer = writer_for(ids)
    writer.add([Outcome.skipped(ids[2], "smart sending")])
    wave = MarkWave(writer, 2)

    def fail(*_):
        raise RuntimeError("database away")

    event.listen(engine_of(store), "before_cursor_execute", fail)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            tries = [pool.submit(wave.mark, tp_id) for tp_id in ids[:2]]
        for answer in tries:
            with pytest.raises(RuntimeError, match="database away"):
                answer.result()
    finally:
        event.remove(engine_of(store), "before_cursor_execute", fail)
    assert set(_statuses(store).values()) == {TouchpointStatus.CLAIMED}
    assert writer.waiting() == 1  # the skip is recorded with the next commit
    assert MarkWave(writer, 1).mark(ids[0]) is True
    assert _statuses(store)[ids[2]] == TouchpointStatus.SKIPPED


def test_a_chunks_commits_share_one_connection_given_back_at_close(store, writer_for):
    ids = _claimed(store, 3)
    checkouts = []
    event.listen(engine_of(store).pool, "checkout", lambda *_: checkouts.append(1))
    writer = writer_for(ids)
    for tp_id in ids:
        assert MarkWave(writer, 1).mark(tp_id) is True
    assert len(checkouts) == 1
    writer.close()
    assert engine_of(store).pool.checkedout() == 0


def test_a_connection_the_database_dropped_is_replaced_at_the_next_commit(store, writer_for):
    engine = engine_of(store)
    if engine.dialect.name != "postgresql":
        pytest.skip("dropping one session's connection from the server is PostgreSQL's")
    ids = _claimed(store, 2)
    writer = writer_for(ids)
    assert MarkWave(writer, 1).mark(ids[0]) is True
    with engine.begin() as conn:  # the server ends every other session, the writer's too
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    writer.add([Outcome.skipped(ids[1], "smart sending")])
    with pytest.raises(DBAPIError):
        writer.record()
    assert writer.waiting() == 1  # the skip waits for the next commit
    writer.record()
    assert _statuses(store) == {ids[0]: TouchpointStatus.SENDING, ids[1]: TouchpointStatus.SKIPPED}


def test_on_postgresql_a_waves_commit_is_one_statement_recording_each_kind(store, writer_for):
    engine = engine_of(store)
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement commit is PostgreSQL's; SQLite commits in steps")
    ids = _claimed(store, 7)
    writer = writer_for(ids)
    assert MarkWave(writer, 1).mark(ids[0]) is True  # the first commit renews the leases too
    assert MarkWave(writer, 1).mark(ids[1]) is True
    with transaction(store) as session:  # the sweep recorded ids[1] unknown; ids[6] went away
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.id == ids[1])
            .values(status=TouchpointStatus.UNKNOWN, lease_until=None)
        )
        session.execute(update(Touchpoint).where(Touchpoint.id == ids[6]).values(claimed_by="x"))
    sent_at = NOW + timedelta(seconds=3)
    writer.add(
        [
            Outcome.sent(ids[0], "msg-0", sent_at),
            Outcome.sent(ids[1], "msg-1", sent_at + timedelta(seconds=1)),  # late: still the truth
            Outcome.failed(ids[2], "SendGrid refused it", answered=True),
            Outcome.skipped(ids[3], "smart sending"),
        ]
    )
    commits = _commits(store)

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(MarkWave(writer, 2).mark, [ids[4], ids[6]]))

    assert answers == [True, False]
    assert commits(ids[:5]) == 1
    assert writer.counts == {"sent": 2, "failed": 1, "skipped": 1}
    with store() as session:
        rows = {
            row.id: row
            for row in session.execute(
                select(
                    Touchpoint.id,
                    Touchpoint.status,
                    Touchpoint.provider_message_id,
                    Touchpoint.sent_at,
                    Touchpoint.reason,
                    Touchpoint.lease_until,
                )
            )
        }
    assert [rows[i].status for i in ids] == [
        TouchpointStatus.SENT,
        TouchpointStatus.SENT,
        TouchpointStatus.FAILED,
        TouchpointStatus.SKIPPED,
        TouchpointStatus.SENDING,
        TouchpointStatus.CLAIMED,
        TouchpointStatus.CLAIMED,
    ]
    assert (rows[ids[0]].provider_message_id, rows[ids[0]].sent_at) == ("msg-0", sent_at)
    assert rows[ids[1]].provider_message_id == "msg-1"
    assert rows[ids[1]].sent_at == sent_at + timedelta(seconds=1)
    assert rows[ids[2]].reason == "SendGrid refused it"
    assert all(rows[i].lease_until is None for i in ids[:4])
    assert rows[ids[4]].lease_until == NOW + LEASE


def test_a_skip_alone_is_recorded_without_marking(store, writer_for):
    ids = _claimed(store, 2)
    writer = writer_for(ids)
    writer.record(renew=True)  # the leases, due at the first write
    writer.add([Outcome.skipped(ids[0], "smart sending")])
    writer.record()
    assert writer.counts == {"skipped": 1}
    assert _statuses(store) == {ids[0]: TouchpointStatus.SKIPPED, ids[1]: TouchpointStatus.CLAIMED}


def test_a_commit_recording_an_opt_out_after_one_statement_commits_is_still_one_transaction(
    store, writer_for
):
    ids = _claimed(store, 3)
    writer = writer_for(ids)
    assert MarkWave(writer, 1).mark(ids[0]) is True  # renews the leases
    writer.add([Outcome.skipped(ids[1], "smart sending")])
    writer.record()  # one statement on PostgreSQL, run in autocommit
    opted_out = Outcome.failed(ids[2], "Twilio 21610: the recipient said STOP", answered=True)
    opted_out.opted_out_phone = "+14155550101"
    writer.add([opted_out])

    def fail(_conn, _cursor, statement, *_):
        if "suppressions" in statement:
            raise RuntimeError("database away")

    event.listen(engine_of(store), "before_cursor_execute", fail)
    try:
        with pytest.raises(RuntimeError, match="database away"):
            writer.record()
    finally:
        event.remove(engine_of(store), "before_cursor_execute", fail)
    # the row's failure, written before the suppression failed, went back with it
    assert _statuses(store)[ids[2]] == TouchpointStatus.CLAIMED
    writer.record()
    assert _statuses(store)[ids[2]] == TouchpointStatus.FAILED
    assert writer.counts == {"skipped": 1, "failed": 1}


def test_on_postgresql_a_chunk_keeps_its_wave_commits_plan_for_itself_alone(store):
    """A chunk's wave commits run on a plan made for the chunk (PostgreSQL's own choice once
    a prepared statement has run a few times), not planned again at each run; its commits in
    steps (a lease renewed) prepare nothing meanwhile, so none of their statements keeps a
    plan; and the connection goes back to the pool planning each run, as the engine set it."""
    engine = engine_of(store)
    if engine.dialect.name != "postgresql":
        pytest.skip("plans kept for a chunk are PostgreSQL's")
    ids = _claimed(store, 14)
    now = [NOW]
    writer = ChunkWriter(store, ChunkLease("w", ids, LEASE, lambda: now[0]), LEASE, lambda: now[0])
    for n, tp_id in enumerate(ids):
        if n % 2 == 0:  # the lease due: this commit renews it, a transaction of steps
            now[0] += LEASE / 3
        assert MarkWave(writer, 1).mark(tp_id) is True
    given_back = []
    marks = wave_statement([], ids[:1], worker="w", lease_until=NOW, dialect=engine.dialect)
    assert marks is not None
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", marks[0])))
    prepared = re.sub(r"%\((\w+)\)s", lambda name: f"${names.index(name[1]) + 1}", marks[0])

    def look(dbapi_conn, _record):
        with dbapi_conn.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('plan_cache_mode'), statement = %s, "
                "generic_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                [prepared, "%UPDATE touchpoints%"],
            )
            given_back.extend(cursor.fetchall())
        dbapi_conn.rollback()

    event.listen(engine.pool, "checkin", look)
    try:
        writer.close()
    finally:
        event.remove(engine.pool, "checkin", look)
    # only the wave commit (marks only, seven times: five planned each, then the plan kept)
    assert given_back == [("force_custom_plan", True, 2)]
    assert _statuses(store) == {tp_id: TouchpointStatus.SENDING for tp_id in ids}
