"""STOP/START and SendGrid unsubscribe/resubscribe move consent only the way the customer did.

Black-box over the signed provider routes, on the test database: a START restores only what
that number's STOP took away; a group resubscribe lifts only what the same group's
unsubscribe made; every change is in the consent trail with its evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fakes.fake_twilio import AUTH_TOKEN
from fakes.fixtures import add_customer
from fastapi.testclient import TestClient
from sqlalchemy import select

from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    ConsentChange,
    ConsentPurpose,
    ConsentState,
    Customer,
    Suppression,
)
from postpurchase.webhooks.app import create_app

BASE = "https://hooks.shop.example.com/postpurchase"
GRANTED, DENIED, UNKNOWN = ConsentState.GRANTED, ConsentState.DENIED, ConsentState.UNKNOWN
INBOUND = "/webhooks/twilio/inbound"
EVENTS = "/webhooks/sendgrid/events"


@pytest.fixture
def client(db_url, monkeypatch, fake_sendgrid):
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", "consent-test-signing-secret")
    monkeypatch.setenv("POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY", fake_sendgrid.public_key)
    monkeypatch.setenv("POSTPURCHASE_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    with TestClient(create_app()) as test_client:
        yield test_client


def _sms(client, fake_twilio, body, sid, phone="+14155550123"):
    params = {
        "From": phone,
        "To": "+14155559999",
        "Body": body,
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
    }
    signature = fake_twilio.sign(BASE + INBOUND, params)
    response = client.post(INBOUND, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    return response


def _sendgrid(client, fake_sendgrid, *events):
    body, headers = fake_sendgrid.signed_events(list(events))
    response = client.post(EVENTS, content=body, headers=headers)
    assert response.status_code == 200, response.text


def _event(kind, event_id, email="anna@example.org", **extra):
    return {
        "email": email,
        "timestamp": int(datetime.now(UTC).timestamp()),
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **extra,
    }


def _states(store, customer_id):
    with store() as session:
        c = session.get(Customer, customer_id)
        return c.sms_consent_state, c.sms_marketing_consent_state, c.email_marketing_consent_state


def _trail(store, customer_id):
    with store() as session:
        rows = session.execute(
            select(ConsentChange)
            .where(ConsentChange.customer_id == customer_id)
            .order_by(ConsentChange.id)
        ).scalars()
        return [(r.purpose, r.from_state, r.to_state, r.source, r.reference) for r in rows]


def _suppression(store, address):
    with store() as session:
        return session.execute(
            select(Suppression.reason, Suppression.source, Suppression.lifted_at).where(
                Suppression.address == address
            )
        ).one_or_none()


def test_start_restores_only_what_the_stop_took_away(client, store, fake_twilio):
    phone = "+14155550123"
    with transaction(store) as session:
        # One number, two customer records: the shop recorded that one of them said no to
        # texts; the other had agreed to texts about orders.
        refused = add_customer(
            session,
            phone=phone,
            sms_consent_state=DENIED,
            sms_marketing_consent_state=UNKNOWN,
            sms_consent_source="platform_payload",
        )
        agreed = add_customer(
            session, phone=phone, sms_consent_state=GRANTED, sms_marketing_consent_state=GRANTED
        )
        unrelated = add_customer(session, phone="+14155550999")

    _sms(client, fake_twilio, "STOP", "SM" + "1" * 32)
    assert _states(store, refused.id)[:2] == (DENIED, DENIED)
    assert _states(store, agreed.id)[:2] == (DENIED, DENIED)
    assert _suppression(store, phone)[0] == "stop"

    _sms(client, fake_twilio, "unstop", "SM" + "2" * 32)

    # The shop's "no" was there before the STOP: START does not turn it into a yes.
    assert _states(store, refused.id)[:2] == (DENIED, DENIED)
    # What the STOP took away comes back; marketing texts need a new yes.
    assert _states(store, agreed.id)[:2] == (GRANTED, DENIED)
    assert _states(store, unrelated.id)[:2] == (GRANTED, GRANTED)
    assert _suppression(store, phone)[2] is not None  # the STOP's suppression is lifted
    stop_ref, start_ref = "twilio:SM" + "1" * 32, "twilio:SM" + "2" * 32
    assert _trail(store, refused.id) == [
        (ConsentPurpose.SMS_MARKETING, UNKNOWN, DENIED, "twilio_stop", stop_ref)
    ]
    assert _trail(store, agreed.id) == [
        (ConsentPurpose.SMS, GRANTED, DENIED, "twilio_stop", stop_ref),
        (ConsentPurpose.SMS_MARKETING, GRANTED, DENIED, "twilio_stop", stop_ref),
        (ConsentPurpose.SMS, DENIED, GRANTED, "twilio_start", start_ref),
    ]


def test_start_without_a_stop_grants_nothing(client, store, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(
            session,
            phone="+14155550123",
            sms_consent_state=UNKNOWN,
            sms_marketing_consent_state=UNKNOWN,
        )

    _sms(client, fake_twilio, "YES", "SM" + "3" * 32)

    assert _states(store, customer.id)[:2] == (UNKNOWN, UNKNOWN)
    assert _trail(store, customer.id) == []


def test_group_resubscribe_lifts_only_its_own_groups_unsubscribe(client, store, fake_sendgrid):
    with transaction(store) as session:
        anna = add_customer(session, email="anna@example.org")

    _sendgrid(client, fake_sendgrid, _event("group_unsubscribe", "ev-1", asm_group_id=42))
    assert _states(store, anna.id)[2] is DENIED
    assert _suppression(store, "anna@example.org")[:2] == (
        "group_unsubscribe",
        "sendgrid:asm_group:42",
    )

    # Another group's resubscribe is not the answer to this one.
    _sendgrid(client, fake_sendgrid, _event("group_resubscribe", "ev-2", asm_group_id=7))
    assert _suppression(store, "anna@example.org")[2] is None
    assert _states(store, anna.id)[2] is DENIED

    _sendgrid(client, fake_sendgrid, _event("group_resubscribe", "ev-3", asm_group_id=42))
    assert _suppression(store, "anna@example.org")[2] is not None
    assert _states(store, anna.id)[2] is GRANTED
    assert [row[1:4] for row in _trail(store, anna.id)] == [
        (GRANTED, DENIED, "sendgrid_unsubscribe"),
        (DENIED, GRANTED, "sendgrid_resubscribe"),
    ]
    assert _trail(store, anna.id)[0][4] == "sendgrid:group_unsubscribe:ev-1"


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(_event("bounce", "ev-b", type="bounce", reason="550 5.1.1"), id="bounce"),
        pytest.param(_event("unsubscribe", "ev-u"), id="global-unsubscribe"),
        pytest.param(_event("spamreport", "ev-s"), id="spam-report"),
    ],
)
def test_group_resubscribe_never_lifts_another_opt_out(client, store, fake_sendgrid, first):
    with transaction(store) as session:
        anna = add_customer(session, email="anna@example.org")

    _sendgrid(client, fake_sendgrid, first)
    _sendgrid(client, fake_sendgrid, _event("group_resubscribe", "ev-r", asm_group_id=42))

    reason, _, lifted_at = _suppression(store, "anna@example.org")
    assert (reason, lifted_at) == (first["event"], None)
    expected = DENIED if first["event"] == "unsubscribe" else GRANTED
    assert _states(store, anna.id)[2] is expected


def test_one_click_unsubscribe_outlives_a_group_resubscribe(client, store, fake_sendgrid):
    """A group unsubscribe, then the customer's one-click unsubscribe from our own link: the
    group's resubscribe later does not undo the one-click."""
    with transaction(store) as session:
        anna = add_customer(session, email="anna@example.org")
    _sendgrid(client, fake_sendgrid, _event("group_unsubscribe", "ev-1", asm_group_id=42))
    token = sign(b"consent-test-signing-secret", LinkClaim("unsubscribe", anna.id, 9))
    assert client.post(f"/u/{token}").status_code == 200
    _sendgrid(client, fake_sendgrid, _event("group_resubscribe", "ev-2", asm_group_id=42))

    reason, _, lifted_at = _suppression(store, "anna@example.org")
    assert (reason, lifted_at) == ("unsubscribe", None)
    with store() as session:
        customer = session.get(Customer, anna.id)
        assert customer.email_marketing_consent_state is DENIED
        assert customer.email_marketing_consent_source == "unsubscribe_page"


def test_twilio_21610_on_a_status_callback_denies_sms_consent(client, store, fake_twilio):
    with transaction(store) as session:
        customer = add_customer(session, phone="+14155550123")
    params = {
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": "failed",
        "ErrorCode": "21610",
        "To": "+14155550123",
        "From": "+14155559999",
        "AccountSid": "AC1",
    }
    path = "/webhooks/twilio/status"
    signature = fake_twilio.sign(BASE + path, params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 204
    assert _states(store, customer.id)[:2] == (DENIED, DENIED)
    assert {row[3:] for row in _trail(store, customer.id)} == {
        ("twilio_stop", "twilio:SM" + "a" * 32)
    }
