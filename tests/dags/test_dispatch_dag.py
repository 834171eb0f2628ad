"""The real dispatch_touchpoints DAG with dag.test(), against the fake providers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes.fake_sendgrid import API_KEY
from fakes.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID
from fakes.fixtures import add_customer, add_order, add_touchpoint
from sqlalchemy import select

from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    ConsentState,
    LedgerKind,
    LoyaltyLedgerEntry,
    Touchpoint,
    TouchpointStatus,
)


@pytest.mark.airflow
@pytest.mark.slow
def test_dispatch_dag_sends_due_touchpoints_in_mapped_chunks(
    store, run_dag, monkeypatch, fake_sendgrid, fake_twilio
):
    # Real channels: every process must share the link-signing secret.
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", "dispatch-dag-test-" + "s" * 32)
    monkeypatch.setenv("POSTPURCHASE_EMAIL_CHANNEL", "sendgrid")
    monkeypatch.setenv("POSTPURCHASE_SENDGRID_HOST", fake_sendgrid.url)
    monkeypatch.setenv("POSTPURCHASE_SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("POSTPURCHASE_SMS_CHANNEL", "twilio")
    monkeypatch.setenv("POSTPURCHASE_TWILIO_API_BASE_URL", fake_twilio.url)
    monkeypatch.setenv("POSTPURCHASE_TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("POSTPURCHASE_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("POSTPURCHASE_TWILIO_MESSAGING_SERVICE_SID", MESSAGING_SERVICE_SID)
    monkeypatch.setenv("POSTPURCHASE_DISPATCH_CHUNK_SIZE", "2")
    monkeypatch.setenv("POSTPURCHASE_QUIET_HOURS_START", "00:00")  # never quiet in this test
    monkeypatch.setenv("POSTPURCHASE_QUIET_HOURS_END", "00:00")
    due = datetime.now(UTC) - timedelta(minutes=5)
    with transaction(store) as session:
        for _ in range(3):
            customer = add_customer(session)
            add_touchpoint(
                session,
                customer,
                add_order(session, customer),
                "delivery_checkin",
                Channel.EMAIL,
                due,
            )
        texter = add_customer(session)
        paid = add_order(session, texter)
        # the points message goes only for an order that earned points (rechecked at sending)
        session.add(
            LoyaltyLedgerEntry(
                customer_id=texter.id,
                order_id=paid.id,
                kind=LedgerKind.AWARD,
                points=129,
                cause=f"award:order:{paid.id}",
            )
        )
        add_touchpoint(session, texter, paid, "points_earned", Channel.SMS, due)
        silent = add_customer(session, email_marketing_consent_state=ConsentState.DENIED)
        add_touchpoint(session, silent, None, "win_back", Channel.EMAIL, due)
        add_touchpoint(  # not due yet: stays planned
            session,
            silent,
            add_order(session, silent),
            "setup_tips",
            Channel.EMAIL,
            due + timedelta(days=3),
        )

    run_dag("dispatch_touchpoints")

    with store() as session:
        rows = session.execute(select(Touchpoint).order_by(Touchpoint.id)).scalars().all()
    assert [r.status for r in rows] == [
        TouchpointStatus.SENT,
        TouchpointStatus.SENT,
        TouchpointStatus.SENT,
        TouchpointStatus.SENT,
        TouchpointStatus.SKIPPED,
        TouchpointStatus.PLANNED,
    ]
    assert len(fake_sendgrid.sent) == 3
    assert len(fake_twilio.sent) == 1
    assert {r.provider_message_id for r in rows[:3]} == {
        s["message_id"] for s in fake_sendgrid.sent
    }
    # Three chunks of at most two were claimed, each under its own name within this run.
    claimants = {r.claimed_by for r in rows[:5]}
    assert len(claimants) == 3
    run_keys = {c.rsplit("/", 1)[0] for c in claimants}
    assert len(run_keys) == 1 and run_keys.pop().startswith("dispatch:manual__")


@pytest.mark.airflow
@pytest.mark.slow
def test_an_idle_dispatch_run_succeeds_cleanly_and_says_so(store, run_dag):
    # Nothing due (the usual minute): no skipped task instances, one line as the result.
    dag_run = run_dag("dispatch_touchpoints")

    states = {(ti.task_id, ti.map_index): ti.state for ti in dag_run.get_task_instances()}
    assert states == {
        ("claim", -1): "success",
        ("send", 0): "success",
        ("summarize", -1): "success",
    }
    summarize = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "summarize")
    assert summarize.xcom_pull(task_ids="summarize") == "idle: nothing due"
