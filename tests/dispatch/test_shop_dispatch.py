"""Dispatch for several shops (SQLite and PostgreSQL): each message goes out in its shop's
brand, through its shop's own provider account (real SDKs against the fakes), and a shop's
campaign override holds for that shop only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes.fake_sendgrid import API_KEY, FakeSendGrid
from fakes.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, FakeTwilio
from fakes.fixtures import add_customer, add_order, add_touchpoint

from postpurchase.exceptions import ConfigError
from postpurchase.messages.reward_subjects import reward_subject
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    Redemption,
    RedemptionStatus,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.tasks.dispatch import build_dispatcher

NOW = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)  # 14:00 in Oslo and Paris: no quiet hours
NORDIC = "northwind-nordic.myshopify.com"
NORDIC_KEY = "SG.nordic-key.0123456789abcdefghijklmnop"
NORDIC_SID = "AC0f9d4a6c2b8e41d7a3c5e9f1b2d4c6a8"
NORDIC_TOKEN = "nordic-twilio-auth-token-5e7c9a1b"

SHOPS = f"""\
shops:
  {NORDIC}:
    name: Northwind Nordic
    postal_address: Northwind Nordic AS, Karl Johans gate 25, 0159 Oslo, Norway
    sender: {{email: hei@nordic.northwind.example}}
    logo_url: https://cdn.northwind.example/nordic/logo.png
    colours: {{primary: "#0b3954"}}
    time_zone: Europe/Oslo
    public_base_url: https://engage.nordic.northwind.example/postpurchase
    sendgrid: {{api_key_env: NORDIC_SENDGRID_API_KEY}}
    twilio:
      account_sid: {NORDIC_SID}
      auth_token_env: NORDIC_TWILIO_AUTH_TOKEN
      messaging_service_sid: MG5e7c9a1b3d5f7e9a1c3b5d7f9e1a3c5b
"""

OVERRIDES = f"""
shops:
  {NORDIC}:
    campaigns:
      review_request: {{enabled: false}}
      delivery_checkin: {{template: setup_tips}}
"""


@pytest.fixture
def sendgrid():
    server = FakeSendGrid(more_keys=(NORDIC_KEY,)).start()
    yield server
    server.stop()


@pytest.fixture
def twilio():
    server = FakeTwilio(more_accounts={NORDIC_SID: NORDIC_TOKEN}).start()
    yield server
    server.stop()


@pytest.fixture
def settings(db_url, tmp_path: Path, sendgrid, twilio, monkeypatch) -> Settings:
    shops = tmp_path / "shops.yaml"
    shops.write_text(SHOPS)
    campaigns = tmp_path / "campaigns.yaml"
    campaigns.write_text((PROJECT_ROOT / "config" / "campaigns.yaml").read_text() + OVERRIDES)
    monkeypatch.setenv("NORDIC_SENDGRID_API_KEY", NORDIC_KEY)
    monkeypatch.setenv("NORDIC_TWILIO_AUTH_TOKEN", NORDIC_TOKEN)
    return Settings(
        var_dir=tmp_path / "var",
        database_url=db_url,
        shops_file=shops,
        campaigns_file=campaigns,
        signing_secret="shop-dispatch-test-secret",  # type: ignore[arg-type]
        email_channel="sendgrid",
        sendgrid_api_key=API_KEY,  # type: ignore[arg-type]
        sendgrid_host=sendgrid.url,
        sms_channel="twilio",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,  # type: ignore[arg-type]
        twilio_messaging_service_sid=MESSAGING_SERVICE_SID,
        twilio_api_base_url=twilio.url,
        public_base_url="https://hooks.shop.example.com/postpurchase",
    )


def _due(store, shop: str, campaign: str, channel: Channel) -> int:
    with transaction(store) as session:
        customer = add_customer(session, shop=shop, time_zone=None)
        order = add_order(session, customer, shop=shop)
        return add_touchpoint(session, customer, order, campaign, channel, NOW, shop=shop).id


def _dispatch(settings: Settings, store) -> dict[str, int]:
    dispatcher = replace(build_dispatcher(settings), clock=lambda: NOW)
    with transaction(store) as session:
        ids = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=100, lease=timedelta(minutes=5)
        )
    return dispatcher.run_chunk("w", ids)


def test_each_shop_sends_in_its_brand_through_its_own_accounts(settings, store, sendgrid, twilio):
    nordic_email = _due(store, NORDIC, "delivery_checkin", Channel.EMAIL)
    nordic_sms = _due(store, NORDIC, "delivery_checkin", Channel.SMS)
    default_email = _due(store, "", "delivery_checkin", Channel.EMAIL)
    unlisted_sms = _due(store, "other-shop.myshopify.com", "delivery_checkin", Channel.SMS)

    assert _dispatch(settings, store) == {"sent": 4}

    by_touchpoint = {int(m["custom_args"]["touchpoint_id"]): m for m in sendgrid.sent}
    nordic, default = by_touchpoint[nordic_email], by_touchpoint[default_email]
    assert sendgrid.key_of[nordic["message_id"]] == NORDIC_KEY
    assert sendgrid.key_of[default["message_id"]] == API_KEY
    assert nordic["from"] == {"email": "hei@nordic.northwind.example", "name": "Northwind Nordic"}
    assert default["from"] == {"email": "hello@shop.example.com", "name": "Northwind Goods"}
    html = next(c["value"] for c in nordic["content"] if c["type"] == "text/html")
    assert "Northwind Nordic AS, Karl Johans gate 25, 0159 Oslo, Norway" in html
    assert 'src="https://cdn.northwind.example/nordic/logo.png"' in html
    assert "#0b3954" in html
    unsubscribe = nordic["headers"]["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://engage.nordic.northwind.example/postpurchase/u/")

    accounts = {m["Body"]: m["account_sid"] for m in twilio.sent}
    assert len(accounts) == 2
    assert sorted(accounts.values()) == sorted([NORDIC_SID, ACCOUNT_SID])
    nordic_body = next(b for b, sid in accounts.items() if sid == NORDIC_SID)
    assert "Northwind Nordic" in nordic_body
    # a shop the file does not list is the engine's: its account and brand
    other_body = next(b for b, sid in accounts.items() if sid == ACCOUNT_SID)
    assert "Northwind Goods" in other_body
    with store() as session:
        for tp_id in (nordic_email, nordic_sms, default_email, unlisted_sms):
            assert session.get(Touchpoint, tp_id).status is TouchpointStatus.SENT


def test_a_campaign_disabled_for_one_shop_is_skipped_for_it_only(settings, store, sendgrid):
    nordic = _due(store, NORDIC, "review_request", Channel.EMAIL)
    default = _due(store, "", "review_request", Channel.EMAIL)

    assert _dispatch(settings, store) == {"sent": 1, "skipped": 1}

    with store() as session:
        skipped = session.get(Touchpoint, nordic)
        assert skipped.status is TouchpointStatus.SKIPPED
        assert "disabled" in skipped.reason
        assert session.get(Touchpoint, default).status is TouchpointStatus.SENT
    assert [m["custom_args"]["touchpoint_id"] for m in sendgrid.sent] == [str(default)]


def test_a_template_override_changes_the_message_for_one_shop_only(settings, store, sendgrid):
    nordic = _due(store, NORDIC, "delivery_checkin", Channel.EMAIL)
    default = _due(store, "", "delivery_checkin", Channel.EMAIL)

    assert _dispatch(settings, store) == {"sent": 2}

    subjects = {int(m["custom_args"]["touchpoint_id"]): m["subject"] for m in sendgrid.sent}
    assert (
        subjects[nordic]
        == "Getting the most out of your Merino Wool Crew Sweater, Forest Green, Size M"
    )
    assert subjects[default].startswith("Has your order #")


def test_quiet_hours_follow_the_shops_time_zone(settings, store, twilio):
    # 21:30 UTC: 22:30 in Oslo (quiet) for the shop's customers without a zone of their own
    late = NOW.replace(hour=21, minute=30)
    nordic = _due(store, NORDIC, "delivery_checkin", Channel.SMS)
    with transaction(store) as session:
        session.get(Touchpoint, nordic).due_at = late
    dispatcher = replace(build_dispatcher(settings), clock=lambda: late)
    with transaction(store) as session:
        ids = claim_due_touchpoints(
            session, worker="w", now=late, limit=100, lease=timedelta(minutes=5)
        )
    assert dispatcher.run_chunk("w", ids) == {"deferred": 1}
    with store() as session:
        row = session.get(Touchpoint, nordic)
        assert row.status is TouchpointStatus.PLANNED
        assert row.due_at == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # 09:00 in Oslo
    assert twilio.sent == []


def test_a_missing_secret_names_the_shop_and_its_line(settings, monkeypatch):
    monkeypatch.delenv("NORDIC_SENDGRID_API_KEY")
    with pytest.raises(ConfigError) as caught:
        build_dispatcher(settings)
    assert str(caught.value) == (
        f"{settings.shops_file}:2: shop {NORDIC}: sendgrid: the environment variable "
        "NORDIC_SENDGRID_API_KEY is not set"
    )


def test_a_reward_message_goes_out_in_the_brand_of_the_customers_shop(settings, store, sendgrid):
    # Messages about points and rewards are touchpoints of the customer's shop: its sender,
    # its footer, its own account, like any campaign's.
    with transaction(store) as session:
        customer = add_customer(session, shop=NORDIC, time_zone=None)
        redemption = Redemption(
            idempotency_key="nordic-reward-1",
            customer_id=customer.id,
            reward="five_off",
            title="5 off your next order",
            points=500,
            platform="pool",
            code="NORDIC-5OFF-1",
            status=RedemptionStatus.ISSUED,
            expires_at=NOW + timedelta(days=30),
            issued_at=NOW,
        )
        session.add(redemption)
        session.flush()
        row = add_touchpoint(
            session, customer, None, "reward_issued", Channel.EMAIL, NOW, shop=NORDIC
        )
        row.subject_key = reward_subject(redemption.id)  # the message is about this code
        touchpoint = row.id

    assert _dispatch(settings, store) == {"sent": 1}

    [mail] = sendgrid.sent
    assert int(mail["custom_args"]["touchpoint_id"]) == touchpoint
    assert sendgrid.key_of[mail["message_id"]] == NORDIC_KEY
    assert mail["from"] == {"email": "hei@nordic.northwind.example", "name": "Northwind Nordic"}
    html = next(c["value"] for c in mail["content"] if c["type"] == "text/html")
    assert "NORDIC-5OFF-1" in html
    assert "Northwind Nordic AS, Karl Johans gate 25, 0159 Oslo, Norway" in html
