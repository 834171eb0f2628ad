"""Claims: concurrent workers never share a row, and a dead worker's rows come back."""

import threading
import time
from datetime import UTC, datetime, timedelta

from event_journeys import claimed_ids
from sqlalchemy import event, insert, select, text

from postpurchase.store.claims import (
    claim_due_touchpoints,
    mark_sending,
    release,
    release_each,
    renew_leases,
)
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    ClaimStatus,
    Customer,
    InboxEvent,
    Touchpoint,
    TouchpointStatus,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _inbox(store, count):
    with transaction(store) as session:
        session.execute(
            insert(InboxEvent),
            [
                {
                    "source": "shopify",
                    "dedupe_key": f"shopify:orders/paid:{n}",
                    "event_type": "order.paid",
                    "subject_id": str(820000 + n),
                    "payload": {"type": "order.paid", "n": n},
                }
                for n in range(count)
            ],
        )


def _drain(store, n, claimed, barrier, errors):
    worker = f"worker-{n}"
    barrier.wait()
    try:
        _claim_until_empty(store, worker, claimed[n])
    except Exception as exc:  # reported by the test, not lost in the thread
        errors.append(exc)


def _claim_until_empty(store, worker, claimed):
    while True:
        with transaction(store) as session:
            ids = claimed_ids(session, worker=worker, now=NOW, limit=25, lease=LEASE)
            if not ids:
                return
            time.sleep(0.005)  # keep the transaction open so claimants really overlap
            release(session, InboxEvent, ids, worker=worker, status=ClaimStatus.DONE)
        claimed.extend(ids)


def _run_together(count, target):
    barrier = threading.Barrier(count)
    errors = []
    threads = [threading.Thread(target=target, args=(n, barrier, errors)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_claimants_never_get_the_same_row(store, db_url):
    _inbox(store, 1000)
    claimed = {n: [] for n in range(4)}

    errors = _run_together(4, lambda n, barrier, errors: _drain(store, n, claimed, barrier, errors))

    assert errors == []
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 1000
    if db_url.startswith("postgresql"):
        # SKIP LOCKED lets claimants work side by side (SQLite serialises them instead)
        assert sum(1 for ids in claimed.values() if ids) > 1, "the claimants did not overlap"
    with store() as session:
        statuses = set(session.scalars(select(InboxEvent.status)))
    assert statuses == {ClaimStatus.DONE}


def test_a_claim_whose_lease_expired_is_claimable_again(store):
    _inbox(store, 3)
    with transaction(store) as session:
        first = claimed_ids(session, worker="crashed", now=NOW, limit=10, lease=LEASE)
    assert len(first) == 3

    with transaction(store) as session:
        early = NOW + LEASE - timedelta(seconds=1)
        assert claimed_ids(session, worker="other", now=early, limit=10, lease=LEASE) == []

    later = NOW + LEASE + timedelta(seconds=1)
    with transaction(store) as session:
        # a drain past its first claim leaves them to the next run's first claim
        assert (
            claimed_ids(
                session, worker="other", now=later, limit=10, lease=LEASE, reclaim_expired=False
            )
            == []
        )
    with transaction(store) as session:
        second = claimed_ids(session, worker="other", now=later, limit=10, lease=LEASE)
    assert second == first

    # the first claimant waking up late must not overwrite the new owner's work
    with transaction(store) as session:
        assert release(session, InboxEvent, first, worker="crashed", status=ClaimStatus.DONE) == 0
    with transaction(store) as session:
        assert release(session, InboxEvent, first, worker="other", status=ClaimStatus.DONE) == 3


def test_a_row_that_keeps_timing_out_is_failed_and_no_longer_blocks(store):
    _inbox(store, 2)
    now = NOW
    for _ in range(3):
        with transaction(store) as session:
            ids = claimed_ids(session, worker="w", now=now, limit=1, lease=LEASE, max_attempts=3)
            assert ids == [1]  # row 1 is always taken first and always "crashes"
        now += LEASE + timedelta(seconds=1)

    with transaction(store) as session:
        ids = claimed_ids(session, worker="w", now=now, limit=1, lease=LEASE, max_attempts=3)
    assert ids == [2]
    with store() as session:
        poisoned = session.get(InboxEvent, 1)
    assert poisoned.status == ClaimStatus.FAILED
    assert "claim lease" in poisoned.last_error


def _touchpoints(store, due_times):
    with transaction(store) as session:
        customer = Customer(source="shopify", external_id="7391", email="ana@example.com")
        session.add(customer)
        session.flush()
        for n, due in enumerate(due_times):
            session.add(
                Touchpoint(
                    subject_key=f"order:{n}",
                    campaign_id="review_request",
                    channel=Channel.EMAIL,
                    customer_id=customer.id,
                    due_at=due,
                )
            )


def test_only_due_touchpoints_are_claimed(store):
    _touchpoints(store, [NOW - timedelta(minutes=1), NOW, NOW + timedelta(minutes=1)])
    with transaction(store) as session:
        ids = claim_due_touchpoints(session, worker="w", now=NOW, limit=10, lease=LEASE)
    assert ids == [1, 2]


def test_a_dead_dispatcher_loses_nothing_and_sends_nothing_twice(store):
    _touchpoints(store, [NOW, NOW, NOW])
    with transaction(store) as session:
        assert claim_due_touchpoints(session, worker="dead", now=NOW, limit=10, lease=LEASE) == [
            1,
            2,
            3,
        ]
    with transaction(store) as session:  # it sent touchpoint 1 and was handing over 2 ...
        assert mark_sending(session, 1, worker="dead")
    with transaction(store) as session:
        release(session, Touchpoint, [1], worker="dead", status=TouchpointStatus.SENT)
    with transaction(store) as session:
        assert mark_sending(session, 2, worker="dead")
    # ... when it died.

    later = NOW + LEASE + timedelta(seconds=1)
    with transaction(store) as session:
        reclaimed = claim_due_touchpoints(session, worker="next", now=later, limit=10, lease=LEASE)
    assert reclaimed == [3]  # never reached: sent by the next worker
    with store() as session:
        statuses = {t.id: t.status for t in session.scalars(select(Touchpoint))}
        maybe_sent = session.get(Touchpoint, 2)
    assert statuses == {
        1: TouchpointStatus.SENT,
        2: TouchpointStatus.UNKNOWN,
        3: TouchpointStatus.CLAIMED,
    }
    assert "may or may not" in maybe_sent.reason


def test_a_worker_that_lost_its_lease_may_not_send(store):
    _touchpoints(store, [NOW])
    with transaction(store) as session:
        claim_due_touchpoints(session, worker="slow", now=NOW, limit=10, lease=LEASE)
    later = NOW + LEASE + timedelta(seconds=1)
    with transaction(store) as session:
        assert claim_due_touchpoints(session, worker="next", now=later, limit=10, lease=LEASE)
    with transaction(store) as session:
        assert mark_sending(session, 1, worker="slow") is False
        assert mark_sending(session, 1, worker="next") is True


def test_concurrent_writers_wait_for_each_other_instead_of_failing(store):
    """Read-then-write transactions from many threads: the pattern that makes SQLite answer
    "database is locked" when a deferred transaction tries to upgrade to a writer."""
    _inbox(store, 1)

    def write(n, barrier, errors):
        barrier.wait()
        try:
            for k in range(20):
                with transaction(store) as session:
                    session.scalars(select(InboxEvent.id)).all()
                    session.add(
                        InboxEvent(
                            source="generic",
                            dedupe_key=f"generic:{n}:{k}",
                            event_type="order.placed",
                            payload={},
                        )
                    )
        except Exception as exc:
            errors.append(exc)

    assert _run_together(8, write) == []
    with store() as session:
        assert len(session.scalars(select(InboxEvent.id)).all()) == 1 + 8 * 20


def test_release_each_sets_each_rows_values_only_where_the_worker_holds_it(store):
    _touchpoints(store, [NOW, NOW, NOW])
    with transaction(store) as session:
        mine = claim_due_touchpoints(session, worker="w", now=NOW, limit=2, lease=LEASE)
        theirs = claim_due_touchpoints(session, worker="other", now=NOW, limit=1, lease=LEASE)
        sent = {"status": TouchpointStatus.SENT, "provider_message_id": None}
        rows = [(i, {**sent, "provider_message_id": f"m{i}"}) for i in [*mine, *theirs]]
        assert release_each(session, Touchpoint, rows, worker="w") == 2
    with store() as session:
        found = {
            t.id: (t.status, t.provider_message_id, t.lease_until)
            for t in session.scalars(select(Touchpoint))
        }
    assert found[mine[0]] == (TouchpointStatus.SENT, f"m{mine[0]}", None)
    assert found[mine[1]] == (TouchpointStatus.SENT, f"m{mine[1]}", None)
    assert found[theirs[0]][:2] == (TouchpointStatus.CLAIMED, None)


def test_inbox_claims_walk_only_the_rows_still_to_process(store, engine):
    """The claim index holds pending and claimed rows only, and claims use it: they name the
    status as a literal (a prepared statement's generic plan could not match a parameter
    against the index's condition) and repeat that condition (SQLite needs it stated)."""
    _inbox(store, 3000)
    with transaction(store) as session:
        done = claimed_ids(session, worker="w", now=NOW, limit=2990, lease=LEASE)
        release(session, InboxEvent, done, worker="w", status=ClaimStatus.DONE)
        session.execute(text("ANALYZE inbox_events"))

    claims: list[tuple[str, dict]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE inbox_events SET status"):
            claims.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with transaction(store) as session:
            ids = claimed_ids(session, worker="w2", now=NOW, limit=25, lease=LEASE)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert len(ids) == 10
    statement, parameters = claims[-1]
    assert "inbox_events.status = 'pending'" in statement
    explain = "EXPLAIN" if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"{explain} {statement}", parameters).all()
    assert "ix_inbox_events_claimable" in str(plan)


def test_renewing_leases_extends_only_the_workers_own_rows(store):
    _touchpoints(store, [NOW, NOW, NOW])
    with transaction(store) as session:
        mine = claim_due_touchpoints(session, worker="a", now=NOW, limit=2, lease=LEASE)
        theirs = claim_due_touchpoints(session, worker="b", now=NOW, limit=1, lease=LEASE)
    later = NOW + timedelta(minutes=9)

    with transaction(store) as session:
        renewed = renew_leases(session, Touchpoint, [*mine, *theirs], worker="a", until=later)

    assert renewed == 2
    with store() as session:
        leases = {t.id: t.lease_until for t in session.scalars(select(Touchpoint))}
    assert [leases[i] for i in mine] == [later, later]
    assert leases[theirs[0]] == NOW + LEASE
