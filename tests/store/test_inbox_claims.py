"""Inbox claims: taken and marked done inside the processing transaction; concurrent drainers
never share a row; a rolled-back claim leaves its rows pending; failures are counted."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

from sent_statements import statements_sent_with_parameters
from sqlalchemy import insert, select, text, update

from postpurchase.store.database import transaction
from postpurchase.store.driver_statements import _compiled
from postpurchase.store.inbox_claims import (
    claim_inbox_rows,
    claim_statement,
    fail_claimed_inbox_rows,
    reclaim_expired_inbox_rows,
    record_inbox_failure,
)
from postpurchase.store.models import ClaimStatus, InboxEvent

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


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


def _ids(session, **claim):
    return [row.id for row in claim_inbox_rows(session, now=NOW, **claim)]


def _rows(store):
    with store() as session:
        return {
            r.id: (r.status, r.attempts, r.last_error)
            for r in session.scalars(select(InboxEvent).order_by(InboxEvent.id))
        }


def _claim_until_empty(store, worker, claimed, barrier, errors):
    barrier.wait()
    try:
        while True:
            with transaction(store) as session:
                ids = _ids(session, worker=worker, limit=25)
                if not ids:
                    return
                time.sleep(0.005)  # keep the transaction open so claimants really overlap
            claimed.extend(ids)
    except Exception as exc:  # reported by the test, not lost in the thread
        errors.append(exc)


def test_concurrent_claimants_never_get_the_same_row(store, db_url):
    _inbox(store, 1000)
    claimed = {n: [] for n in range(4)}
    barrier, errors = threading.Barrier(4), []
    threads = [
        threading.Thread(
            target=_claim_until_empty, args=(store, f"w{n}", claimed[n], barrier, errors)
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 1000
    if db_url.startswith("postgresql"):
        # SKIP LOCKED lets claimants work side by side (SQLite serialises them instead)
        assert sum(1 for ids in claimed.values() if ids) > 1, "the claimants did not overlap"
    assert {status for status, _, _ in _rows(store).values()} == {ClaimStatus.DONE}


def test_a_claimed_payload_is_its_json_in_utf8_bytes(store):
    payload = {"type": "order.paid", "street": "1280 Rue Sherbrooke O, Montréal", "n": 0}
    with transaction(store) as session:
        session.execute(
            insert(InboxEvent),
            [
                {
                    "source": "shopify",
                    "dedupe_key": "shopify:orders/paid:0",
                    "event_type": "order.paid",
                    "subject_id": "820000",
                    "payload": payload,
                }
            ],
        )
    with transaction(store) as session:
        [row] = claim_inbox_rows(session, worker="w", now=NOW, limit=1)
    assert isinstance(row.payload, bytes)
    assert json.loads(row.payload.decode("utf-8")) == payload


def test_a_claim_is_done_with_its_transaction_and_pending_again_if_it_rolls_back(store):
    _inbox(store, 3)
    with store() as session, session.begin():
        rows = claim_inbox_rows(session, worker="w", now=NOW, limit=2)
        assert [(r.id, r.attempts) for r in rows] == [(1, 1), (2, 1)]
        assert b'"n": 0' in rows[0].payload or b'"n":0' in rows[0].payload
        session.rollback()  # the worker died mid-batch
    assert {r[:2] for r in _rows(store).values()} == {(ClaimStatus.PENDING, 0)}

    with transaction(store) as session:
        assert _ids(session, worker="w", limit=10, after_id=1) == [2, 3]
    with store() as session:
        done = session.get(InboxEvent, 2)
    assert (done.status, done.claimed_by, done.processed_at) == (ClaimStatus.DONE, "w", NOW)
    assert _rows(store)[1][:2] == (ClaimStatus.PENDING, 0)


def test_a_row_held_by_an_open_transaction_is_not_taken_again(store, db_url):
    _inbox(store, 2)
    holder = store()
    holder.begin()
    try:
        assert _ids(holder, worker="a", limit=1) == [1]
        if db_url.startswith("postgresql"):  # SQLite's second writer would wait instead
            with transaction(store) as session:
                assert _ids(session, worker="b", limit=10) == [2]
                assert _ids(session, worker="b", limit=10, only=[1]) == []
    finally:
        holder.commit()
        holder.close()
    assert _rows(store)[1][0] is ClaimStatus.DONE


def test_failures_are_counted_and_a_row_is_failed_after_the_last_attempt(store):
    _inbox(store, 2)
    for attempt in (1, 2):
        with transaction(store) as session:
            status = record_inbox_failure(session, 1, "boom", worker="w", max_attempts=3)
        assert status is ClaimStatus.PENDING
        assert _rows(store)[1] == (ClaimStatus.PENDING, attempt, "boom")
    with transaction(store) as session:
        assert record_inbox_failure(session, 1, "boom", worker="w", max_attempts=3) is (
            ClaimStatus.FAILED
        )
        # a row that is no longer pending (failed here, or done by another drainer) is left
        assert record_inbox_failure(session, 1, "again", worker="w", max_attempts=3) is None
    assert _rows(store)[1] == (ClaimStatus.FAILED, 3, "boom")

    # A claim of the other rows passes the failed one by; a failure a retry cannot fix fails
    # in the claiming transaction.
    with transaction(store) as session:
        assert _ids(session, worker="w", limit=10) == [2]
        fail_claimed_inbox_rows(session, {2: "not a canonical event"})
    assert _rows(store)[2] == (ClaimStatus.FAILED, 1, "not a canonical event")


def test_rows_an_earlier_version_left_claimed_come_back_once_their_lease_ran_out(store):
    _inbox(store, 3)
    with transaction(store) as session:
        for row_id, attempts, lease_until in (
            (1, 1, NOW - timedelta(seconds=1)),  # its claimant died
            (2, 3, NOW - timedelta(seconds=1)),  # died three times: given up
            (3, 1, NOW + timedelta(minutes=1)),  # still being worked on
        ):
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id == row_id)
                .values(
                    status=ClaimStatus.CLAIMED,
                    claimed_by="old",
                    attempts=attempts,
                    lease_until=lease_until,
                )
            )

    with transaction(store) as session:
        assert reclaim_expired_inbox_rows(session, now=NOW, max_attempts=3) == 2
        assert _ids(session, worker="new", limit=10) == [1]

    rows = _rows(store)
    assert rows[1][:2] == (ClaimStatus.DONE, 2)
    assert rows[2][0] is ClaimStatus.FAILED and "claim lease" in rows[2][2]
    assert rows[3][:2] == (ClaimStatus.CLAIMED, 1)


def test_inbox_claims_walk_only_the_rows_still_to_process(store, engine):
    """The claim index holds pending rows only, and claims use it: they name the status as a
    literal (a prepared statement's generic plan could not match a parameter against the
    index's condition) and repeat that condition (SQLite needs it stated)."""
    _inbox(store, 3000)
    with transaction(store) as session:
        _ids(session, worker="w", limit=2990)
        session.execute(text("ANALYZE inbox_events"))

    with (
        statements_sent_with_parameters(
            engine, lambda statement: statement.startswith("UPDATE inbox_events SET status")
        ) as claims,
        transaction(store) as session,
    ):
        ids = _ids(session, worker="w2", limit=25)

    assert len(ids) == 10
    if engine.dialect.name == "postgresql":
        # run by the driver (``driver_statements``), which the hook does not see
        assert not claims
        claim = claim_statement("postgresql", after=False, only=False)
        statement, literals = _compiled(claim, engine.dialect)
        parameters = {**literals, "worker": "w2", "now": NOW, "limit": 25, "previous_sort": "on"}
    else:
        statement, parameters = claims[-1]
    assert "inbox_events.status = 'pending'" in statement
    explain = "EXPLAIN" if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"{explain} {statement}", parameters).all()
    assert "ix_inbox_events_claimable" in str(plan)


def test_a_claim_leaves_the_planner_settings_as_it_found_them(store, engine):
    """The claim is planned without sorting (PostgreSQL); the statements after it in its
    transaction are planned with the setting as it was, whether the claim took rows or not."""
    if engine.dialect.name != "postgresql":
        return  # SQLite has no such setting
    _inbox(store, 2)
    for before in ("on", "off"):
        for after_id, rows in ((0, 2), (2, 0)):
            with store() as session, session.begin():
                session.execute(text(f"SET LOCAL enable_sort = {before}"))
                taken = _ids(session, worker="w", limit=10, after_id=after_id)
                setting = session.scalar(text("SELECT current_setting('enable_sort')"))
                session.rollback()
            assert (len(taken), setting) == (rows, before)
