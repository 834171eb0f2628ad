"""With the database stopped under the app: senders that retry get 503, and no opt-out is lost.

A real PostgreSQL of the test's own is stopped while the app serves, then started again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fakes.fake_twilio import AUTH_TOKEN
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fastapi.testclient import TestClient
from private_postgres import private_postgres  # noqa: F401
from sqlalchemy import select

from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.settings import load_settings, parse_database_url
from postpurchase.store import schema
from postpurchase.store.database import (
    engine_of,
    make_engine,
    open_store,
    session_factory,
    transaction,
)
from postpurchase.store.models import (
    Channel,
    ConsentState,
    Customer,
    MessageEvent,
    Suppression,
    SurveyResponse,
)
from postpurchase.tasks.housekeeping import tidy_database
from postpurchase.webhooks import opt_out_spool
from postpurchase.webhooks.app import create_app

BASE = "https://hooks.shop.example.com/postpurchase"
SECRET = "down-test-signing-secret"
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@pytest.fixture
def app_on_private_postgres(private_postgres, tmp_path, monkeypatch, fake_sendgrid):  # noqa: F811
    engine = make_engine(parse_database_url(private_postgres.url), connect_timeout=2)
    schema.upgrade(engine)
    store = session_factory(engine)
    for name, value in {
        "DATABASE_URL": private_postgres.url,
        "DATABASE_CONNECT_TIMEOUT": "2",
        "VAR_DIR": str(tmp_path / "var"),
        "PUBLIC_BASE_URL": BASE,
        "SIGNING_SECRET": SECRET,
        "SENDGRID_EVENT_PUBLIC_KEY": fake_sendgrid.public_key,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }.items():
        monkeypatch.setenv(f"POSTPURCHASE_{name}", value)
    with TestClient(create_app()) as client:
        yield client, store, private_postgres
    engine.dispose()
    engine_of(open_store(load_settings())).dispose()  # the app's engine: close its connections


def _twilio(client, fake_twilio, path, params):
    signature = fake_twilio.sign(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _link(purpose, customer_id, touchpoint_id, score=None):
    return sign(SECRET.encode(), LinkClaim(purpose, customer_id, touchpoint_id, score))


def test_opt_outs_are_kept_and_retrying_senders_told_to_retry(
    app_on_private_postgres, fake_sendgrid, fake_twilio
):
    client, store, server = app_on_private_postgres
    with transaction(store) as session:
        anna = add_customer(session, email="anna@example.org", phone="+14155550123")
        bert = add_customer(session, email="bert@example.org", phone="+14155550124")
        order = add_order(session, anna)
        tp = add_touchpoint(session, anna, order, "delivery_checkin", Channel.EMAIL, NOW)
    events = [{"email": "x@example.org", "event": "bounce", "sg_event_id": "ev-1"}]
    body, headers = fake_sendgrid.signed_events(events)
    status = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered", "To": "+1415"}
    inbound = "/webhooks/twilio/inbound"

    server.stop()
    stop = _twilio(client, fake_twilio, inbound, {"From": anna.phone, "Body": "STOP"})
    unsubscribe = client.post(f"/u/{_link('unsubscribe', bert.id, tp.id)}")
    sendgrid = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
    twilio_status = _twilio(client, fake_twilio, "/webhooks/twilio/status", status)
    survey_page = client.get(f"/s/{_link('survey', anna.id, tp.id, 4)}")
    survey_answer = client.post(f"/s/{_link('survey', anna.id, tp.id, 4)}")

    # The customers are answered as usual; their opt-outs wait on disk.
    assert stop.status_code == 200 and stop.text.startswith("<?xml")
    assert unsubscribe.status_code == 200 and "no longer receive" in unsubscribe.text
    assert len(opt_out_spool.pending(load_settings())) == 2
    # Senders that retry are told to; a person is asked to try again.
    for response in (sendgrid, twilio_status, survey_answer):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"]
    assert survey_page.status_code == 200

    server.start()
    retried = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
    # The next opt-out request applies what was spooled, before its own.
    later = _twilio(client, fake_twilio, inbound, {"From": "+14155550999", "Body": "STOP"})

    assert retried.status_code == later.status_code == 200
    assert opt_out_spool.pending(load_settings()) == []
    with store() as session:
        assert session.get(Customer, anna.id).sms_consent_state is ConsentState.DENIED
        assert session.get(Customer, bert.id).email_marketing_consent_state is ConsentState.DENIED
        suppressed = set(session.execute(select(Suppression.channel, Suppression.address)).all())
        assert session.execute(select(MessageEvent.provider_event_id)).scalars().all() == ["ev-1"]
        assert session.execute(select(SurveyResponse)).first() is None
    assert {
        (Channel.SMS, anna.phone),
        (Channel.EMAIL, "bert@example.org"),
        (Channel.SMS, "+14155550999"),
        (Channel.EMAIL, "x@example.org"),
    } == suppressed


def test_housekeeping_applies_the_spool(app_on_private_postgres, fake_twilio):
    client, store, server = app_on_private_postgres
    with transaction(store) as session:
        anna = add_customer(session, phone="+14155550123")

    server.stop()
    stop = _twilio(
        client, fake_twilio, "/webhooks/twilio/inbound", {"From": anna.phone, "Body": "stop"}
    )
    assert stop.status_code == 200
    with pytest.raises(Exception):  # noqa: B017 - still down: housekeeping fails, spool kept
        tidy_database()
    assert len(opt_out_spool.pending(load_settings())) == 1
    server.start()

    summary = tidy_database()

    assert "applied 1 spooled opt-out(s)" in summary
    with store() as session:
        assert session.get(Customer, anna.id).sms_consent_state is ConsentState.DENIED
