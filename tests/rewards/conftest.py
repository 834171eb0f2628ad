"""Rewards fixtures: the shipped-like catalogue, customers with points, fake platforms, and
events delivered to the inbox and processed."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from event_journeys import process
from fakes.fake_shopify_admin import ACCESS_TOKEN, API_VERSION, FakeShopifyAdmin
from fakes.fake_woocommerce import CONSUMER_KEY, CONSUMER_SECRET, FakeWooCommerce
from shop_rewards import CONFIG, NOW

from postpurchase.events import CanonicalEvent
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import adjust
from postpurchase.rewards.redeemer import Redeemer
from postpurchase.rewards.shopify_discounts import ShopifyDiscounts
from postpurchase.rewards.woocommerce_coupons import WooCommerceCoupons
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import Customer, CustomerTier, InboxEvent


@pytest.fixture
def config() -> LoyaltyConfig:
    return LoyaltyConfig.model_validate(CONFIG)


@pytest.fixture
def customer_with(store: SessionFactory) -> Callable[..., int]:
    """``customer_with(600)``: a Shopify customer holding that many points; their id."""
    made = iter(range(1, 10_000))

    def make(
        points: int, *, tier: str | None = None, source: str = "shopify", shop: str = ""
    ) -> int:
        n = next(made)
        with transaction(store) as session:
            customer = Customer(
                source=source,
                shop=shop,
                external_id=str(7_208_815_100_000 + n),
                email=f"grace.hopper{n}@example.com",
                first_name="Grace",
                last_name="Hopper",
            )
            session.add(customer)
            session.flush()
            if points:
                adjust(session, customer_id=customer.id, points=points, reason="opening balance")
            if tier:
                session.add(CustomerTier(customer_id=customer.id, tier=tier, since=NOW))
            return customer.id

    return make


@pytest.fixture
def shopify() -> Iterator[FakeShopifyAdmin]:
    fake = FakeShopifyAdmin().start()
    fake.variants["TOTE-CANVAS-01"] = "gid://shopify/ProductVariant/44871243055"
    yield fake
    fake.stop()


@pytest.fixture
def woocommerce() -> Iterator[FakeWooCommerce]:
    fake = FakeWooCommerce().start()
    fake.products["TOTE-CANVAS-01"] = 794
    yield fake
    fake.stop()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def shopify_redeemer(
    store: SessionFactory, config: LoyaltyConfig, shopify: FakeShopifyAdmin, sleeps: Sleeps
) -> Iterator[Redeemer]:
    issuer = ShopifyDiscounts(
        "northwind.myshopify.com",
        ACCESS_TOKEN,
        api_version=API_VERSION,
        admin_url=shopify.url,
        timeout=0.5,
    )
    yield Redeemer(store, config, issuer, clock=lambda: NOW, sleep=sleeps)
    issuer.close()


@pytest.fixture
def woo_redeemer(
    store: SessionFactory, config: LoyaltyConfig, woocommerce: FakeWooCommerce, sleeps: Sleeps
) -> Iterator[Redeemer]:
    issuer = WooCommerceCoupons(woocommerce.url, CONSUMER_KEY, CONSUMER_SECRET, timeout=0.5)
    yield Redeemer(store, config, issuer, clock=lambda: NOW, sleep=sleeps)
    issuer.close()


@pytest.fixture
def pool_redeemer(store: SessionFactory, config: LoyaltyConfig) -> Redeemer:
    return Redeemer(store, config, None, clock=lambda: NOW)


@pytest.fixture
def drain(store: SessionFactory) -> Callable[..., object]:
    """``drain(loyalty=None)``: process the inbox with the shipped campaigns, at ``NOW``."""
    return lambda loyalty=None: process(store, now=NOW, loyalty=loyalty)


@pytest.fixture
def deliver(store: SessionFactory, drain: Callable[..., object]) -> Callable[..., None]:
    """``deliver(*events, source=..., loyalty=None)``: canonical events (or their payloads,
    dated ``NOW``) into the inbox, each a delivery of its own, then processed."""
    keys = itertools.count()

    def run(
        *events: CanonicalEvent | dict[str, Any],
        source: str,
        loyalty: LoyaltyConfig | None = None,
    ) -> None:
        with transaction(store) as session:
            for event in events:
                if isinstance(event, CanonicalEvent):
                    payload, subject, at = event.as_payload(), event.subject_id(), event.occurred_at
                else:
                    payload, subject, at = event, None, NOW
                session.add(
                    InboxEvent(
                        source=source,
                        dedupe_key=f"rewards-test:{source}:{next(keys)}",
                        event_type=payload["type"],
                        subject_id=subject,
                        occurred_at=at,
                        payload=payload,
                    )
                )
        drain(loyalty)

    return run
