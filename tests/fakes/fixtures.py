"""Fixtures shared by the message tests: fake providers, a shop, records, a dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any, Literal

import pytest

from postpurchase.channels.ratelimit import LocalRateLimiter
from postpurchase.channels.sendgrid_email import SendGridEmailSender
from postpurchase.channels.twilio_sms import TwilioSmsSender
from postpurchase.dispatch import Dispatcher, GatePolicy
from postpurchase.messages.context import ShopProfile
from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, MessageRenderer
from postpurchase.store.models import (
    Channel,
    ConsentState,
    Customer,
    Order,
    OrderItem,
    Touchpoint,
)

from .fake_sendgrid import API_KEY, FakeSendGrid
from .fake_twilio import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, FakeTwilio

SIGNING_KEY = b"test-signing-key-for-links"


@dataclass(frozen=True)
class Spec:
    id: str
    template: str
    consent: Literal["transactional", "marketing"]
    smart_sending: bool = False
    cancel_on: frozenset[str] = frozenset()
    expires_after: timedelta | None = None
    needs_points: bool = False


SPECS = {
    s.id: s
    for s in (
        Spec("delivery_checkin", "delivery_checkin", "transactional"),
        Spec("setup_tips", "setup_tips", "transactional"),
        Spec(
            "review_request",
            "review_request",
            "marketing",
            True,
            frozenset({"cancelled", "refunded", "returned", "reviewed"}),
        ),
        Spec("points_earned", "points_earned", "transactional"),
        Spec("vip_welcome", "vip_welcome", "marketing"),
        Spec("win_back", "win_back", "marketing", True),
    )
}


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    server = FakeSendGrid().start()
    yield server
    server.stop()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.fixture
def shop() -> ShopProfile:
    return ShopProfile(
        name="Northwind Goods",
        url="https://shop.example.com",
        support_email="help@shop.example.com",
        postal_address="Northwind Goods Ltd, 12 Harbour Street, Portland, ME 04101, USA",
        public_base_url="https://hooks.shop.example.com/postpurchase",
        loyalty_page_url="https://shop.example.com/pages/rewards",
        review_link_template="{product_url}#write-a-review",
        default_locale="en",
        default_time_zone="UTC",
        signing_key=SIGNING_KEY,
    )


@pytest.fixture
def renderer() -> MessageRenderer:
    return MessageRenderer(DEFAULT_TEMPLATES_DIR, sms_segment_limit=2)


_ids = count(1)


def add_customer(session: Any, **values: Any) -> Customer:
    n = next(_ids)
    defaults: dict[str, Any] = {
        "source": "shopify",
        "external_id": f"c{n}",
        "email": f"customer{n}@example.org",
        "phone": f"+3361234{n:04d}",
        "first_name": "Chloé",
        "last_name": "Martin",
        "locale": "en",
        "time_zone": "Europe/Paris",
        "email_marketing_consent_state": ConsentState.GRANTED,
        "sms_consent_state": ConsentState.GRANTED,
        "sms_marketing_consent_state": ConsentState.GRANTED,
    }
    customer = Customer(**{**defaults, **values})
    session.add(customer)
    session.flush()
    return customer


def add_order(session: Any, customer: Customer, **values: Any) -> Order:
    n = next(_ids)
    defaults: dict[str, Any] = {
        "source": "shopify",
        "external_id": f"o{n}",
        "customer_id": customer.id,
        "name": f"#{1000 + n}",
        "currency": "EUR",
        "subtotal": Decimal("129.00"),
        "total": Decimal("134.90"),
        "total_shipping": Decimal("5.90"),
        "financial_status": "paid",
        "placed_at": datetime(2026, 11, 10, 9, 0, tzinfo=UTC),
        "delivered_at": datetime(2026, 11, 14, 15, 0, tzinfo=UTC),
    }
    order = Order(**{**defaults, **values})
    order.items = [
        OrderItem(
            external_id="li-1",
            product_id="p-77",
            title="Merino Wool Crew Sweater, Forest Green, Size M",
            quantity=1,
            unit_price=Decimal("129.00"),
            image_url="https://cdn.shop.example.com/sweater.jpg",
            product_url="https://shop.example.com/products/merino-crew",
        )
    ]
    session.add(order)
    session.flush()
    return order


def add_touchpoint(
    session: Any,
    customer: Customer,
    order: Order | None,
    campaign: str,
    channel: Channel,
    due_at: datetime,
    **values: Any,
) -> Touchpoint:
    touchpoint = Touchpoint(
        subject_key=f"order:{order.id}" if order else f"customer:{customer.id}",
        campaign_id=campaign,
        step=0,
        channel=channel,
        customer_id=customer.id,
        order_id=order.id if order else None,
        due_at=due_at,
        **values,
    )
    session.add(touchpoint)
    session.flush()
    return touchpoint


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sleeps:
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def make_dispatcher(store, shop, renderer, fake_sendgrid, fake_twilio):
    """Build a dispatcher on the test database, talking to the fakes through the real SDKs."""

    def make(now: datetime, *, timeout: float = 5.0, **policy: Any) -> Dispatcher:
        return Dispatcher(
            store=store,
            lookup=SPECS.get,
            renderer=renderer,
            shop=shop,
            email=SendGridEmailSender(API_KEY, host=fake_sendgrid.url, timeout=timeout),
            sms=TwilioSmsSender(
                ACCOUNT_SID,
                AUTH_TOKEN,
                messaging_service_sid=MESSAGING_SERVICE_SID,
                from_number=None,
                status_callback="https://hooks.shop.example.com/postpurchase/webhooks/twilio/status",
                api_base_url=fake_twilio.url,
                timeout=timeout,
            ),
            email_limiter=LocalRateLimiter(10_000),
            sms_limiter=LocalRateLimiter(10_000),
            policy=GatePolicy(**policy),
            clock=Clock(now),
            sleep=Sleeps(),
        )

    return make
