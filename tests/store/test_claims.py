"""Touchpoint claims: concurrent dispatchers never share a row, and a dead one's rows come back
(inbox claims: test_inbox_claims.py)."""

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from postpurchase.store.claims import (
    claim_due_touchpoints,
    mark_sending,
    release_each,
    renew_leases,
)
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    Customer,
    InboxEvent,
    Touchpoint,
    TouchpointStatus,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _run_together(count, target):
    barrier = threading.Barrier(count)
    errors = []
    threads = [threading.Thread(target=target, args=(n, barrier, errors)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


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
        assert release_each(session, [(1, {"status": TouchpointStatus.SENT})], worker="dead") == 1
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
    with transaction(store) as session:
        session.add(
            InboxEvent(
                source="generic", dedupe_key="generic:0", event_type="order.placed", payload={}
            )
        )

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
        assert release_each(session, rows, worker="w") == 2
    with store() as session:
        found = {
            t.id: (t.status, t.provider_message_id, t.lease_until)
            for t in session.scalars(select(Touchpoint))
        }
    assert found[mine[0]] == (TouchpointStatus.SENT, f"m{mine[0]}", None)
    assert found[mine[1]] == (TouchpointStatus.SENT, f"m{mine[1]}", None)
    assert found[theirs[0]][:2] == (TouchpointStatus.CLAIMED, None)


def test_renewing_leases_extends_only_the_workers_own_rows(store):
    _touchpoints(store, [NOW, NOW, NOW])
    with transaction(store) as session:
        mine = claim_due_touchpoints(session, worker="a", now=NOW, limit=2, lease=LEASE)
        theirs = claim_due_touchpoints(session, worker="b", now=NOW, limit=1, lease=LEASE)
    later = NOW + timedelta(minutes=9)

    with transaction(store) as session:
        renewed = renew_leases(session, [*mine, *theirs], worker="a", until=later)

    assert renewed == 2
    with store() as session:
        leases = {t.id: t.lease_until for t in session.scalars(select(Touchpoint))}
    assert [leases[i] for i in mine] == [later, later]
    assert leases[theirs[0]] == NOW + LEASE


def test_release_each_gives_each_row_its_own_values_of_several_kinds(store):
    _touchpoints(store, [NOW, NOW, NOW])
    with transaction(store) as session:
        ids = claim_due_touchpoints(session, worker="w", now=NOW, limit=3, lease=LEASE)
        rows = [
            (
                tp_id,
                {
                    "status": TouchpointStatus.PLANNED,
                    "due_at": NOW + timedelta(hours=n),
                    "reason": None if n == 1 else f"r{n}",
                },
            )
            for n, tp_id in enumerate(ids)
        ]
        assert release_each(session, list(reversed(rows)), worker="w") == 3
    with store() as session:
        found = {
            t.id: (t.status, t.due_at, t.reason, t.lease_until)
            for t in session.scalars(select(Touchpoint))
        }
    assert found == {
        tp_id: (TouchpointStatus.PLANNED, values["due_at"], values["reason"], None)
        for tp_id, values in rows
    }
