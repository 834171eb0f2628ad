"""Hosted pages and Twilio webhooks for several shops (SQLite and PostgreSQL): a page speaks
for the customer's shop; a shop's own Twilio account signs its callbacks with its token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fakes.fake_sendgrid import EventSigner
from fakes.fake_twilio import AUTH_TOKEN
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import Channel, MessageEvent, Suppression, TouchpointStatus
from postpurchase.webhooks.app import create_app

BASE = "https://hooks.shop.example.com/postpurchase"
SECRET = "shop-pages-signing-secret"
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
NORDIC = "northwind-nordic.myshopify.com"
NORDIC_SID = "AC0f9d4a6c2b8e41d7a3c5e9f1b2d4c6a8"  # as in the shipped example
NORDIC_TOKEN = "nordic-twilio-auth-token-5e7c9a1b"


NORDIC_EVENTS = EventSigner()  # the shop's own SendGrid account's Event Webhook key
ENGINE_EVENTS = EventSigner()


@pytest.fixture
def client(db_url, tmp_path, monkeypatch):
    example = (PROJECT_ROOT / "config" / "shops.example.yaml").read_text()
    shops = tmp_path / "shops.yaml"
    shops.write_text(
        example.replace(
            "      api_key_env: NORDIC_SENDGRID_API_KEY\n",
            "      api_key_env: NORDIC_SENDGRID_API_KEY\n"
            f"      event_public_key: {NORDIC_EVENTS.public_key}\n",
        )
    )
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("POSTPURCHASE_SHOPS_FILE", str(shops))
    monkeypatch.setenv("POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY", ENGINE_EVENTS.public_key)
    monkeypatch.setenv("POSTPURCHASE_SMS_CHANNEL", "twilio")
    monkeypatch.setenv("POSTPURCHASE_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("NORDIC_TWILIO_AUTH_TOKEN", NORDIC_TOKEN)
    with TestClient(create_app()) as test_client:
        yield test_client


def _link(purpose: str, customer_id: int, touchpoint_id: int, score: int | None = None) -> str:
    return sign(SECRET.encode(), LinkClaim(purpose, customer_id, touchpoint_id, score))


def test_pages_show_the_customers_shop(client, store):
    with transaction(store) as session:
        ingrid = add_customer(session, shop=NORDIC)
        anna = add_customer(session)
        nordic_tp = add_touchpoint(session, ingrid, None, "win_back", Channel.EMAIL, NOW)
        default_tp = add_touchpoint(session, anna, None, "win_back", Channel.EMAIL, NOW)

    nordic = client.get(f"/u/{_link('unsubscribe', ingrid.id, nordic_tp.id)}")
    default = client.get(f"/u/{_link('unsubscribe', anna.id, default_tp.id)}")

    assert nordic.status_code == default.status_code == 200
    assert "Stop receiving emails from Northwind Nordic?" in nordic.text
    assert "background:#f2f4f3" in nordic.text and "color:#0b3954" in nordic.text
    assert "Stop receiving emails from Northwind Goods?" in default.text
    assert "Northwind Nordic" not in default.text

    done = client.post(f"/u/{_link('unsubscribe', ingrid.id, nordic_tp.id)}")
    assert "You will no longer receive emails from Northwind Nordic." in done.text

    survey = client.get(f"/n/{_link('nps', ingrid.id, nordic_tp.id, 9)}")
    assert "recommend Northwind Nordic to a friend" in survey.text


def _status(client, token: str, account: str, message_sid: str):
    params = {
        "MessageSid": message_sid,
        "MessageStatus": "delivered",
        "To": "+4791234567",
        "From": "+4790000000",
        "AccountSid": account,
    }
    path = "/webhooks/twilio/status"
    signature = RequestValidator(token).compute_signature(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def test_twilio_callbacks_are_verified_with_their_accounts_token(client, store):
    with transaction(store) as session:
        ingrid = add_customer(session, shop=NORDIC, phone="+4791234567")
        add_touchpoint(
            session,
            ingrid,
            add_order(session, ingrid, shop=NORDIC),
            "delivery_checkin",
            Channel.SMS,
            NOW,
            shop=NORDIC,
            status=TouchpointStatus.SENT,
            provider_message_id="SM" + "a" * 32,
        )

    assert _status(client, NORDIC_TOKEN, NORDIC_SID, "SM" + "a" * 32).status_code == 204
    # the engine's token does not vouch for the shop's account, nor the shop's for the engine's
    assert _status(client, AUTH_TOKEN, NORDIC_SID, "SM" + "a" * 32).status_code == 401
    assert _status(client, NORDIC_TOKEN, "AC" + "1" * 32, "SM" + "a" * 32).status_code == 401
    with store() as session:
        assert session.scalars(select(MessageEvent.event)).all() == ["delivered"]


def test_sendgrid_events_of_a_shops_own_account_are_accepted(client, store):
    event = {
        "email": "ingrid@example.no",
        "timestamp": 1795960800,
        "event": "bounce",
        "type": "bounce",
        "sg_event_id": "nordic-ev-1",
        "sg_message_id": "nordic.filter0001.16648.5515E0B88.0",
    }
    for n, signer in enumerate((NORDIC_EVENTS, ENGINE_EVENTS)):
        body, headers = signer.signed_events([{**event, "sg_event_id": f"nordic-ev-{n}"}])
        answer = client.post("/webhooks/sendgrid/events", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
    body, headers = EventSigner().signed_events([event])  # an account nobody configured
    assert (
        client.post("/webhooks/sendgrid/events", content=body, headers=headers).status_code == 401
    )
    with store() as session:
        assert session.scalars(select(Suppression.address)).all() == ["ingrid@example.no"]
