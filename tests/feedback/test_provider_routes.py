"""Provider feedback and customer links through the webhook app (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from fakes.fake_sendgrid import EventSigner
from fakes.fake_twilio import AUTH_TOKEN
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from postpurchase.feedback import address_digest
from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    ConsentState,
    Customer,
    MessageEvent,
    RejectedWebhook,
    Suppression,
    SurveyResponse,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.webhooks.app import create_app

BASE = "https://hooks.shop.example.com/postpurchase"
SECRET = "route-test-signing-secret"
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@pytest.fixture
def client(db_url, monkeypatch, fake_sendgrid):
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY", fake_sendgrid.public_key)
    monkeypatch.setenv("POSTPURCHASE_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    with TestClient(create_app()) as test_client:
        yield test_client


def _count(store, model):
    with store() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def _event(kind, email, event_id, **extra):
    return {
        "email": email,
        "timestamp": 1795960800,
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **extra,
    }


def test_sendgrid_events_are_stored_once_and_bounces_suppress(client, store, fake_sendgrid):
    events = [
        _event("delivered", "anna@example.org", "ev-1"),
        _event("open", "anna@example.org", "ev-2"),
        _event("click", "anna@example.org", "ev-3", url="https://shop.example.com/p/1"),
        _event("bounce", "Bob@Example.org", "ev-4", type="bounce", reason="550 5.1.1 unknown"),
        _event("bounce", "carol@example.org", "ev-5", type="blocked", reason="421 try later"),
        _event("spamreport", "dan@example.org", "ev-6"),
    ]
    body, headers = fake_sendgrid.signed_events(events)

    first = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
    again = client.post("/webhooks/sendgrid/events", content=body, headers=headers)

    assert first.status_code == 200, first.text
    assert first.json() == {"received": 6, "new": 6, "skipped": 0}
    assert again.json() == {"received": 6, "new": 0, "skipped": 0}
    assert _count(store, MessageEvent) == 6
    with store() as session:
        suppressed = dict(session.execute(select(Suppression.address, Suppression.reason)).all())
    # A "blocked" bounce is temporary: the address stays reachable.
    assert suppressed == {"bob@example.org": "bounce", "dan@example.org": "spamreport"}


def test_forged_sendgrid_events_are_rejected(client, store, fake_sendgrid):
    events = [_event("unsubscribe", "anna@example.org", "ev-9")]
    forger = EventSigner()  # its own key pair, not the one the app trusts
    body, headers = forger.signed_events(events)
    forged = client.post("/webhooks/sendgrid/events", content=body, headers=headers)

    genuine_body, genuine_headers = fake_sendgrid.signed_events(events)
    tampered = genuine_body.replace(b"anna@", b"bert@")
    altered = client.post("/webhooks/sendgrid/events", content=tampered, headers=genuine_headers)
    unsigned = client.post("/webhooks/sendgrid/events", content=genuine_body)

    assert [forged.status_code, altered.status_code, unsigned.status_code] == [401, 401, 401]
    assert "does not verify" in forged.json()["error"]
    assert _count(store, MessageEvent) == 0
    assert _count(store, Suppression) == 0
    # kept for ops, without the signature
    with store() as session:
        kept = session.execute(select(RejectedWebhook).order_by(RejectedWebhook.id)).scalars().all()
    # counted per kind of reason, with samples
    assert [(r.route, r.status_code, r.count) for r in kept] == [
        ("/webhooks/sendgrid/events", 401, 2),
        ("/webhooks/sendgrid/events", 401, 1),
    ]
    assert "does not verify" in kept[0].reason
    assert "missing X-Twilio-Email-Event-Webhook-Signature" in kept[1].reason
    assert "anna@example.org" in kept[0].body_excerpt
    assert "bert@example.org" in kept[0].samples[1]["body_excerpt"]
    assert not any("signature" in name for r in kept for name in r.headers)
    assert not any("signature" in name for r in kept for s in r.samples for name in s["headers"])


def test_bounce_event_suppresses_the_next_email(client, store, make_dispatcher, fake_sendgrid):
    with transaction(store) as session:
        customer = add_customer(session, email="lea@example.org")
        order = add_order(session, customer)
        first = add_touchpoint(session, customer, order, "delivery_checkin", Channel.EMAIL, NOW)
        ids = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=10, lease=timedelta(minutes=5)
        )
    make_dispatcher(NOW).run_chunk("w", ids)
    [sent] = fake_sendgrid.sent

    # SendGrid reports the bounce with the send's custom_args as top-level keys.
    body, headers = fake_sendgrid.signed_events(
        [
            _event(
                "bounce",
                "lea@example.org",
                "ev-b1",
                type="bounce",
                sg_message_id=f"{sent['message_id']}.filter0001.1.2.0",
                **sent["custom_args"],
            ),
        ]
    )
    assert (
        client.post("/webhooks/sendgrid/events", content=body, headers=headers).status_code == 200
    )

    later = NOW + timedelta(days=3)
    with transaction(store) as session:
        second = add_touchpoint(
            session, session.get(Customer, customer.id), order, "setup_tips", Channel.EMAIL, later
        )
        ids = claim_due_touchpoints(
            session, worker="w2", now=later, limit=10, lease=timedelta(minutes=5)
        )
    assert make_dispatcher(later).run_chunk("w2", ids) == {"skipped": 1}
    assert len(fake_sendgrid.sent) == 1
    with store() as session:
        assert session.get(Touchpoint, second.id).reason == "suppressed (bounce)"
        event = session.execute(select(MessageEvent)).scalar_one()
        assert (event.touchpoint_id, event.provider_message_id) == (first.id, sent["message_id"])


def _twilio_post(client, fake_twilio, path, params, signature=None):
    signature = signature or fake_twilio.sign(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def test_inbound_stop_start_and_help(client, store, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(session, phone="+14155550123")
    inbound = "/webhooks/twilio/inbound"
    message = {
        "From": "+14155550123",
        "To": "+14155559999",
        "MessageSid": "SM1",
        "AccountSid": "AC1",
    }

    stop = _twilio_post(client, fake_twilio, inbound, {**message, "Body": " stop "})
    with store() as session:
        assert session.get(Customer, customer.id).sms_consent_state is ConsentState.DENIED
        suppression = session.execute(select(Suppression)).scalar_one()
        assert (suppression.reason, suppression.lifted_at) == ("stop", None)

    start = _twilio_post(client, fake_twilio, inbound, {**message, "Body": "START"})
    with store() as session:
        assert session.get(Customer, customer.id).sms_consent_state is ConsentState.GRANTED
        assert session.execute(select(Suppression)).scalar_one().lifted_at is not None

    help_reply = _twilio_post(client, fake_twilio, inbound, {**message, "Body": "Help"})

    assert stop.status_code == start.status_code == help_reply.status_code == 200
    assert "<Message>" not in stop.text
    assert help_reply.headers["content-type"].startswith("application/xml")
    assert "<Message>Northwind Goods: order updates and offers." in help_reply.text


def test_forged_twilio_requests_change_nothing(client, store, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(session, phone="+14155550123")
    params = {"From": "+14155550123", "To": "+14155559999", "Body": "STOP"}
    wrong_key = base64.b64encode(b"x" * 20).decode()

    forged = _twilio_post(client, fake_twilio, "/webhooks/twilio/inbound", params, wrong_key)
    # Signed for another URL: a signature cannot be replayed to a different route.
    replayed = _twilio_post(
        client,
        fake_twilio,
        "/webhooks/twilio/inbound",
        params,
        fake_twilio.sign(BASE + "/webhooks/twilio/status", params),
    )

    assert forged.status_code == replayed.status_code == 401
    with store() as session:
        assert session.get(Customer, customer.id).sms_consent_state is ConsentState.GRANTED
        kept = session.execute(select(RejectedWebhook).order_by(RejectedWebhook.id)).scalars().all()
    assert _count(store, Suppression) == 0
    assert [(r.route, r.status_code, r.count) for r in kept] == [
        ("/webhooks/twilio/inbound", 401, 2)
    ]
    assert "Body=STOP" in kept[0].body_excerpt
    assert "x-twilio-signature" not in kept[0].headers


def test_twilio_status_is_recorded_once_per_status(client, store, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(session)
        tp = add_touchpoint(
            session,
            customer,
            None,
            "win_back",
            Channel.SMS,
            NOW,
            status=TouchpointStatus.SENT,
            provider_message_id="SM" + "a" * 32,
        )
    params = {
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": "delivered",
        "To": customer.phone,
        "From": "+14155559999",
        "AccountSid": "AC1",
    }

    responses = [
        _twilio_post(client, fake_twilio, "/webhooks/twilio/status", params) for _ in range(2)
    ]

    assert [r.status_code for r in responses] == [204, 204]
    with store() as session:
        event = session.execute(select(MessageEvent)).scalar_one()
    assert (event.touchpoint_id, event.event, event.provider) == (tp.id, "delivered", "twilio")


def _link(purpose, customer_id, touchpoint_id, score=None):
    return sign(SECRET.encode(), LinkClaim(purpose, customer_id, touchpoint_id, score))


def test_unsubscribe_link_shows_a_page_then_one_click_post(client, store):
    with transaction(store) as session:
        anna = add_customer(session, email="anna@example.org")
        bert = add_customer(session, email="bert@example.org")
        tp = add_touchpoint(session, anna, None, "win_back", Channel.EMAIL, NOW)
    token = _link("unsubscribe", anna.id, tp.id)

    page = client.get(f"/u/{token}")
    with store() as session:
        # a GET changes nothing
        assert session.get(Customer, anna.id).email_marketing_consent_state is ConsentState.GRANTED
    done = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    again = client.post(f"/u/{token}")

    assert page.status_code == 200 and 'method="post"' in page.text
    assert done.status_code == again.status_code == 200
    with store() as session:
        assert session.get(Customer, anna.id).email_marketing_consent_state is ConsentState.DENIED
        assert session.get(Customer, bert.id).email_marketing_consent_state is ConsentState.GRANTED
        rows = session.execute(select(Suppression.address, Suppression.reason)).all()
    assert rows == [("anna@example.org", "unsubscribe")]


def test_link_tokens_cannot_be_forged_or_moved_to_another_customer(client, store):
    with transaction(store) as session:
        anna = add_customer(session)
        bert = add_customer(session)
        tp = add_touchpoint(session, anna, None, "delivery_checkin", Channel.EMAIL, NOW)
    genuine = _link("unsubscribe", anna.id, tp.id)
    payload, mac = genuine.split(".")
    moved = base64.urlsafe_b64encode(f"u.{bert.id}.{tp.id}".encode()).decode().rstrip("=")
    other_key = sign(b"another shop's key", LinkClaim("unsubscribe", bert.id, tp.id))
    survey_as_unsubscribe = _link("survey", anna.id, tp.id, 5)

    for token in (f"{moved}.{mac}", other_key, survey_as_unsubscribe, "garbage"):
        assert client.post(f"/u/{token}").status_code == 400, token
    with store() as session:
        assert session.get(Customer, bert.id).email_marketing_consent_state is ConsentState.GRANTED
        assert session.get(Customer, anna.id).email_marketing_consent_state is ConsentState.GRANTED


def test_survey_link_records_the_answer_posted_from_its_page(client, store):
    with transaction(store) as session:
        anna = add_customer(session)
        bert = add_customer(session)
        order = add_order(session, anna)
        tp = add_touchpoint(session, anna, order, "delivery_checkin", Channel.EMAIL, NOW)
    four, two = _link("survey", anna.id, tp.id, 4), _link("survey", anna.id, tp.id, 2)

    first = client.post(f"/s/{four}")  # the link's own score when the form sends none
    second = client.post(f"/s/{two}", data={"score": "2"})
    # Signed, but the touchpoint is not Bert's: refused.
    not_his = client.post(f"/s/{_link('survey', bert.id, tp.id, 1)}")

    assert first.status_code == second.status_code == 200
    assert "You rated your delivery 2 out of 5" in second.text
    assert not_his.status_code == 404
    with store() as session:
        response = session.execute(select(SurveyResponse)).scalar_one()
    assert (response.customer_id, response.order_id, response.score) == (anna.id, order.id, 2)


def test_event_webhook_body_must_be_an_array(client, fake_sendgrid):
    body = json.dumps({"event": "open", "sg_event_id": "ev-1"}).encode()
    headers = fake_sendgrid.events.headers_for(body)

    response = client.post("/webhooks/sendgrid/events", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json() == {"error": "body must be a JSON array of event objects"}


def test_start_lifts_a_stop_kept_as_a_digest_after_an_erasure(client, store, fake_twilio):
    phone = "+14155550123"
    with transaction(store) as session:
        session.add(
            Suppression(
                channel=Channel.SMS,
                address=address_digest(Channel.SMS, phone, SECRET.encode()),
                reason="stop",
            )
        )
        add_customer(session, phone=phone)  # the number came back with a new order
    message = {"From": phone, "To": "+14155559999", "MessageSid": "SM9", "AccountSid": "AC1"}
    inbound = "/webhooks/twilio/inbound"
    answer = _twilio_post(client, fake_twilio, inbound, {**message, "Body": "START"})
    assert answer.status_code == 200
    with store() as session:
        assert session.execute(select(Suppression)).scalar_one().lifted_at is not None


@pytest.mark.parametrize("path", ["/webhooks/twilio/status", "/webhooks/twilio/inbound"])
def test_signed_twilio_form_with_a_nul_is_refused_and_nothing_stored(
    client, store, fake_twilio, path
):
    params = {
        "MessageSid": "SM" + "b" * 32,
        "MessageStatus": "delivered\x00",
        "From": "+14155550123",
        "Body": "STOP",
        "AccountSid": "AC1",
    }

    response = _twilio_post(client, fake_twilio, path, params)

    assert response.status_code == 400
    assert response.json()["error"] == "form field 'MessageStatus' holds a NUL character"
    assert _count(store, MessageEvent) == _count(store, Suppression) == 0
    with store() as session:
        kept = session.execute(select(RejectedWebhook)).scalar_one()
    assert (kept.route, kept.status_code) == (path, 400)
