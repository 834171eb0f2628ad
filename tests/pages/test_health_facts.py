"""The health page's figures from the engine's tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postpurchase.pages.airflow_runs import AirflowState
from postpurchase.pages.health import health_facts, wake_up_verdict
from postpurchase.store.database import transaction
from postpurchase.store.models import ClaimStatus, InboxEvent

NOW = datetime(2026, 11, 27, 12, 30, 20, tzinfo=UTC)


def _event(n: int, received: datetime, status: ClaimStatus = ClaimStatus.DONE) -> InboxEvent:
    return InboxEvent(
        source="shopify",
        dedupe_key=f"shopify:{n}",
        event_type="order.paid",
        payload={},
        received_at=received,
        status=status,
        last_error="order.paid: unknown currency" if status is ClaimStatus.FAILED else None,
    )


def test_lag_and_events_per_minute_over_the_last_hour(store):
    received = [NOW - timedelta(hours=3)] * 4  # older than the hour: not counted
    received += [NOW - timedelta(minutes=30, seconds=5)] * 3 + [NOW - timedelta(seconds=10)] * 2
    with transaction(store) as session:
        for n, at in enumerate(received):
            session.add(_event(n, at))
        session.add(_event(100, NOW - timedelta(minutes=7), ClaimStatus.PENDING))
        session.add(_event(101, NOW - timedelta(minutes=1), ClaimStatus.FAILED))
    with store() as session:
        facts = health_facts(session, now=NOW)

    counts = {minute.strftime("%H:%M"): n for minute, n in facts.per_minute if n}
    assert counts == {"12:00": 3, "12:23": 1, "12:29": 1, "12:30": 2}
    assert len(facts.per_minute) == 60 and facts.per_minute[-1][0].strftime("%H:%M") == "12:30"
    assert facts.pending == 1 and facts.oldest_pending_at == NOW - timedelta(minutes=7)
    assert [(f["reason"], f["events"]) for f in facts.failed] == [
        ("order.paid: unknown currency", 1)
    ]
    assert facts.newest_received_at == NOW - timedelta(minutes=1)


def test_the_wake_up_is_judged_against_the_newest_event():
    newest = NOW - timedelta(minutes=10)
    woke = AirflowState(last_asset_event_at=newest + timedelta(seconds=4))
    silent = AirflowState(last_asset_event_at=newest - timedelta(hours=1))
    assert wake_up_verdict(woke, newest, NOW)[0] == "ok"
    assert wake_up_verdict(silent, newest, NOW)[0] == "broken"
    assert wake_up_verdict(silent, NOW - timedelta(seconds=30), NOW)[0] == "waiting"
    assert wake_up_verdict(AirflowState(unavailable="no Airflow here"), newest, NOW)[0] == "unknown"
