"""Genuine platform payloads through the whole engine, as a shop would run it.

Each payload in ``tests/fixtures/genuine/`` (sources beside each file) is signed and posted to
the real webhook app, processed by the drain a DAG run calls, and dispatched to the outbox,
on SQLite and PostgreSQL. The payloads are used byte for byte: instead of moving their
timestamps, the engine's clocks are set to the time the story needs (intake refuses times in
its future, so "now" is always after the payload's own times).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from deliveries import SHOPIFY_SECRET, WOO_SECRET, Sender
from fastapi.testclient import TestClient
from genuine import genuine
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from postpurchase.campaigns.timeline import order_timeline
from postpurchase.campaigns.validation import load_valid_campaigns
from postpurchase.dispatch import claim_chunks
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.loyalty.estimate import estimated_award
from postpurchase.platforms import woocommerce
from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory
from postpurchase.store.models import (
    ClaimStatus,
    Customer,
    InboxEvent,
    LoyaltyLedgerEntry,
    Order,
    OrderItem,
    RejectedWebhook,
    Suppression,
    Touchpoint,
)
from postpurchase.tasks.dispatch import build_dispatcher
from postpurchase.tasks.processing import drain_inbox, plan_followups
from postpurchase.webhooks.app import create_app

BASE = "https://hooks.shop.example.com/postpurchase"
TWILIO_TOKEN = "twilio-auth-token-genuine-9c1d"
# The shipped loyalty file: 1 point per unit of subtotal in USD, 100 for a first order.
FIRST_ORDER_BONUS = 100


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass
class Shop:
    """The engine as a shop runs it, with one clock for intake, processing and dispatch."""

    settings: Settings
    store: SessionFactory
    client: TestClient
    now: datetime

    @property
    def send(self) -> Sender:
        return Sender(self.client)

    def drain(self) -> dict[str, Any]:
        return drain_inbox(self.settings, now=self.now)

    def follow_up(self) -> str:
        return plan_followups(self.settings, now=self.now)

    def dispatch(self) -> dict[str, int]:
        chunks = claim_chunks(
            self.store,
            run_key=f"test-{self.now.isoformat()}",
            now=self.now,
            chunk_size=50,
            max_chunks=4,
            lease=timedelta(minutes=5),
        )
        dispatcher = replace(build_dispatcher(self.settings), clock=lambda: self.now)
        totals: dict[str, int] = {}
        for chunk in chunks:
            for outcome, n in dispatcher.run_chunk(chunk["worker"], chunk["ids"]).items():
                totals[outcome] = totals.get(outcome, 0) + n
        return totals

    def outbox(self) -> list[dict[str, Any]]:
        folder = self.settings.var_dir / "outbox"
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]

    def email(self, campaign: str) -> EmailMessage:
        [path] = (self.settings.var_dir / "outbox").glob(f"*-{campaign}.eml")
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message

    def rows(self, model: Any) -> list[Any]:
        with self.store() as session:
            return list(session.scalars(select(model).order_by(model.id)))


def _shop(db_url: str, store: SessionFactory, tmp_path: Path, **overrides: Any) -> Shop:
    settings = Settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        shopify_webhook_secret=SHOPIFY_SECRET,
        woocommerce_webhook_secret=WOO_SECRET,
        public_base_url=BASE,
        signing_secret="genuine-journeys-signing-secret",
        twilio_auth_token=TWILIO_TOKEN,
        shop_time_zone="America/New_York",
        **overrides,
    )
    return Shop(settings, store, TestClient(create_app(settings, session_factory=store)), NOW)


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(db_url, store, tmp_path, monkeypatch):
    # The provider routes read their settings from the environment.
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    made = _shop(db_url, store, tmp_path)
    with made.client:
        yield made


@pytest.fixture
def dev_shop(db_url, store, tmp_path):
    """A developer's shop that asked to process test orders."""
    made = _shop(db_url, store, tmp_path, include_test_orders=True)
    with made.client:
        yield made


# --- Shopify test orders -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["test_notification_orders_create.json", "dev_store_aud_orders_create.json"]
)
def test_a_shopify_test_order_is_recorded_as_ignored_and_touches_nothing(shop, name):
    body = genuine(f"shopify/{name}")
    response = shop.send.shopify("orders/create", body, event_id="evt-test-order")

    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert response.json()["notes"] == ["test order"]
    again = shop.send.shopify("orders/create", body, event_id="evt-test-order")
    assert again.json() == {"status": "duplicate"}

    shop.drain()
    [row] = shop.rows(InboxEvent)
    assert row.status is ClaimStatus.IGNORED
    assert row.payload == {"topic": "orders/create", "ignored": "test order"}  # no personal data
    for model in (Customer, Order, OrderItem, LoyaltyLedgerEntry, Touchpoint):
        assert shop.rows(model) == [], model.__name__


def test_shopify_test_notification_when_a_developer_includes_test_orders(dev_shop):
    """Shopify's "Send test notification": cancelled, voided, with placeholder phones."""
    body = genuine("shopify/test_notification_orders_create.json")
    dev_shop.now = utc(body["updated_at"]) + timedelta(minutes=2)
    response = dev_shop.send.shopify("orders/create", body)
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "accepted"

    dev_shop.drain()
    [customer] = dev_shop.rows(Customer)
    # The customer's own address wins over the order's contact email (jon@doe.ca).
    assert (customer.external_id, customer.email) == ("115310627314723954", "john@test.com")
    assert (customer.first_name, customer.last_name) == ("John", "Smith")
    assert customer.phone is None  # "555-555-SHIP" is a placeholder, not a number
    [order] = dev_shop.rows(Order)
    assert (order.name, order.currency, order.total) == ("#9999", "USD", Decimal("403.00"))
    assert (order.total_discounts, order.total_shipping) == (Decimal("5.00"), Decimal("10.00"))
    assert order.cancelled_at == utc("2019-06-04T13:53:06-04:00")
    assert order.paid_at is None  # voided
    assert [i.title for i in dev_shop.rows(OrderItem)] == ["IPod Nano - 8GB"] * 2
    assert dev_shop.rows(LoyaltyLedgerEntry) == []
    assert dev_shop.rows(Touchpoint) == []


def test_a_real_aud_dev_store_order_without_an_email(dev_shop):
    """A real development-store order: paid in AUD (not the shop's USD), ``email: ""`` and a
    customer whose email is null, phone in E.164."""
    body = genuine("shopify/dev_store_aud_orders_create.json")
    dev_shop.now = utc(body["updated_at"]) + timedelta(minutes=2)
    assert dev_shop.send.shopify("orders/create", body).status_code == 202

    dev_shop.drain()
    [customer] = dev_shop.rows(Customer)
    assert (customer.email, customer.phone) == (None, "+61413824449")
    assert (customer.first_name, customer.time_zone) == ("matt", "Australia/Sydney")
    [order] = dev_shop.rows(Order)
    assert (order.name, order.currency) == ("#1005", "AUD")
    assert (order.total, order.subtotal, order.total_shipping) == (
        Decimal("60.00"),
        Decimal("50.00"),
        Decimal("10.00"),
    )
    assert isinstance(order.total, Decimal)
    # Paid on orders/create (financial_status "paid"): paid, though no orders/paid came.
    assert order.paid_at == utc(body["updated_at"])
    [item] = dev_shop.rows(OrderItem)
    assert item.title == '"Sydney E-Riders" print onto Lazy Rolling Armoured Hoody'
    assert (item.sku, item.vendor, item.product_type) == ("h00d13", "Openresourcing", None)
    assert dev_shop.rows(LoyaltyLedgerEntry) == []  # another currency than the shop's earns none

    dev_shop.now += timedelta(hours=1)
    dev_shop.dispatch()
    assert [m for m in dev_shop.outbox() if m["channel"] == "email"] == []  # no address


# --- Shopify's documented order, refund and the Admin API's wrapped shape ----------------------


def test_an_admin_api_order_is_refused_as_wrapped_and_its_order_accepted(shop):
    wrapped = genuine("shopify/admin_api_order_wrapped.json")
    order = wrapped["order"]
    shop.now = utc(order["updated_at"]) + timedelta(minutes=1)

    response = shop.send.shopify("orders/create", wrapped)
    assert response.status_code == 422
    [error] = response.json()["errors"]  # one reason, not every field of an order as missing
    assert error["field"] == "order"
    assert 'wrapped as {"order": {...}}' in error["problem"]
    assert "post the order object itself" in error["problem"]

    # Shopify signs the body, not the topic: this authorized order is no orders/paid.
    response = shop.send.shopify("orders/paid", order)
    assert response.status_code == 422
    assert response.json()["reason"] == "body does not match X-Shopify-Topic"
    assert response.json()["errors"][0]["field"] == "financial_status"

    # Refusals are counted per route, status and kind of reason: both are one kind.
    assert [(r.route, r.status_code, r.count) for r in shop.rows(RejectedWebhook)] == [
        ("/webhooks/shopify", 422, 2)
    ]

    assert shop.send.shopify("orders/create", order).status_code == 202
    shop.drain()
    [stored] = shop.rows(Order)
    assert (stored.name, stored.currency, stored.total) == ("#1001", "USD", Decimal("409.94"))
    assert (stored.subtotal, stored.total_tax) == (Decimal("398.00"), Decimal("11.94"))
    assert stored.financial_status == "authorized" and stored.paid_at is None
    assert [(i.title, i.sku) for i in shop.rows(OrderItem)] == [
        ("IPod Nano - 8gb", "IPOD2008GREEN"),
        ("IPod Nano - 8gb", "IPOD2008RED"),
        ("IPod Nano - 8gb", "IPOD2008BLACK"),
    ]
    [customer] = shop.rows(Customer)
    assert (customer.email, customer.first_name) == ("bob.norman@hostmail.com", "Bob")
    assert customer.phone == "+15556251199"  # "555-625-1199" on the shipping address, US
    assert shop.rows(LoyaltyLedgerEntry) == []  # authorized, not paid: no points yet
    assert shop.rows(Touchpoint) == []


def test_a_refund_body_is_a_refund_and_nothing_else(shop):
    order = genuine("shopify/admin_api_order_wrapped.json")["order"]
    refund = genuine("shopify/admin_api_refund_wrapped.json")["refund"]
    shop.now = utc(refund["created_at"]) + timedelta(minutes=1)
    assert shop.send.shopify("orders/create", order).status_code == 202

    mismatched = shop.send.shopify("orders/cancelled", refund)
    assert mismatched.status_code == 422
    assert mismatched.json()["errors"] == [
        {"field": "body", "problem": "is a refund, but orders/cancelled needs an order"}
    ]
    assert shop.send.shopify("refunds/create", refund).status_code == 202

    shop.drain()
    [stored] = shop.rows(Order)
    assert stored.cancelled_at is None
    assert stored.refunded_amount == Decimal("209.00")  # the successful refund transaction
    assert [r.status_code for r in shop.rows(RejectedWebhook)] == [422]


# --- WooCommerce's documented orders -----------------------------------------------------------


def test_woocommerce_order_decoded_once_paid_and_thanked(shop):
    body = genuine("woocommerce/order_processing_docs.json")
    shop.now = utc(body["date_modified_gmt"] + "Z") + timedelta(minutes=1)
    response = shop.send.woocommerce("order.created", body)
    assert response.status_code == 202, response.json()

    shop.drain()
    [customer] = shop.rows(Customer)
    assert customer.external_id == "guest:john.doe@example.com"
    assert (customer.first_name, customer.last_name) == ("John", "Doe")
    assert customer.phone == "+15555555555"  # "(555) 555-5555", read as a US number
    assert customer.time_zone == "America/Los_Angeles"
    [order] = shop.rows(Order)
    assert (order.name, order.currency, order.total) == ("#727", "USD", Decimal("29.35"))
    assert order.paid_at == utc("2017-03-22T19:28:08Z")  # date_paid_gmt
    titles = [i.title for i in shop.rows(OrderItem)]
    assert titles == ["Woo Single #1", "Ship Your Idea \u2013 Color: Black, Size: M Test"]

    # 18.00 of line subtotals: 18 points, and the first-order bonus.
    assert sum(e.points for e in shop.rows(LoyaltyLedgerEntry)) == 18 + FIRST_ORDER_BONUS
    shop.now += timedelta(minutes=10)
    assert shop.dispatch().get("sent") == 1
    [sent] = shop.outbox()
    assert (sent["campaign_id"], sent["to"]) == ("points_earned", "john.doe@example.com")
    assert "#727" in sent["text"] and f"+{18 + FIRST_ORDER_BONUS} points" in sent["text"]

    # Twilio reports a STOP from the number in E.164: it is the customer's number.
    # The parameters of Twilio's documented incoming-message request
    # (twilio.com/docs/messaging/guides/webhook-request); values made up.
    stop = {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "NumMedia": "0",
        "SmsSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "SmsStatus": "received",
        "Body": "STOP",
        "FromCountry": "US",
        "To": "+15017122661",
        "NumSegments": "1",
        "MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "From": "+15555555555",
        "ApiVersion": "2010-04-01",
    }
    url = BASE + "/webhooks/twilio/inbound"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, stop)
    answer = shop.client.post(
        "/webhooks/twilio/inbound", data=stop, headers={"X-Twilio-Signature": signature}
    )
    assert answer.status_code == 200
    [suppression] = shop.rows(Suppression)
    assert (suppression.address, suppression.reason) == (customer.phone, "stop")


def test_woocommerce_order_first_seen_completed_counts_as_paid(shop):
    """A shop that connects its webhook after payment first hears of the order as completed:
    it earns its points, gets the points email, and the timeline says the same."""
    body = genuine("woocommerce/order_completed_docs.json")
    modified = utc(body["date_modified_gmt"] + "Z")
    shop.now = modified + timedelta(minutes=1)
    assert shop.send.woocommerce("order.updated", body).status_code == 202

    summary = shop.drain()
    assert summary["events"] == {"order.fulfilled": 1}
    [order] = shop.rows(Order)
    assert order.paid_at == utc("2017-03-22T19:28:08Z")
    assert order.fulfilled_at == modified
    assert sum(e.points for e in shop.rows(LoyaltyLedgerEntry)) == 18 + FIRST_ORDER_BONUS
    planned = {(t.campaign_id, t.status.value) for t in shop.rows(Touchpoint)}
    assert ("points_earned", "planned") in planned

    # `postpurchase campaigns timeline` reads the same order the same way.
    event = woocommerce.normalise("order.updated", body)
    assert event is not None and event.order is not None
    config = load_valid_campaigns(shop.settings.campaigns_file, shop.settings.templates_dir)
    award = estimated_award(event.order, load_loyalty_config(shop.settings.loyalty_config))
    assert award is not None
    timeline = order_timeline(
        event.order, config, shop_zone=UTC, fulfilled_at=modified, points_earned=award.points
    )
    assert any(row.campaign == "points_earned" and row.due_at for row in timeline)

    shop.now += timedelta(minutes=10)
    assert shop.dispatch().get("sent") == 1
    assert [m["campaign_id"] for m in shop.outbox()] == ["points_earned"]

    # No delivery report: assumed 10 days after completion; the check-in goes the day after,
    # and shows the product name with its dash, escaped once in HTML.
    shop.now = modified + timedelta(days=10, hours=1)
    shop.follow_up()
    shop.now = modified + timedelta(days=11, hours=2)
    assert shop.dispatch().get("sent") == 1
    checkin = shop.email("delivery_checkin")
    html = checkin.get_body(("html",))
    text = checkin.get_body(("plain",))
    assert html is not None and text is not None
    assert "Ship Your Idea \u2013 Color: Black, Size: M Test" in html.get_content()
    assert "&amp;ndash;" not in html.get_content() and "&ndash;" not in html.get_content()
    assert "1 × Ship Your Idea \u2013 Color: Black, Size: M Test" in text.get_content()
