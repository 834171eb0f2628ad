"""Rewards fixtures: the shipped-like catalogue, customers with points, fake platforms."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import adjust
from postpurchase.rewards.redemption import Redeemer
from postpurchase.rewards.shopify_discounts import ShopifyDiscounts
from postpurchase.rewards.woocommerce_coupons import WooCommerceCoupons
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import Customer, CustomerTier
from tests.fakes.fake_shopify_admin import ACCESS_TOKEN, API_VERSION, FakeShopifyAdmin
from tests.fakes.fake_woocommerce import CONSUMER_KEY, CONSUMER_SECRET, FakeWooCommerce

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)

CONFIG: dict[str, Any] = {
    "shop_currency": "USD",
    "earning": {"points_per_unit": "1"},
    "tiers": {"levels": [{"name": "Bronze"}, {"name": "VIP", "min_spend": "1000"}]},
    "rewards": [
        {
            "name": "five_off",
            "title": "$5 off",
            "kind": "amount_off",
            "amount": "5.00",
            "points": 500,
            "min_order": "25.00",
            "valid_days": 30,
            "refund_on_expiry": True,
        },
        {
            "name": "ten_percent",
            "title": "10% off",
            "kind": "percent_off",
            "percent": 10,
            "points": 400,
        },
        {
            "name": "free_shipping",
            "title": "Free shipping",
            "kind": "free_shipping",
            "points": 300,
            "valid_days": 60,
        },
        {
            "name": "free_tote",
            "title": "A free tote",
            "kind": "free_product",
            "sku": "TOTE-CANVAS-01",
            "points": 200,
        },
        {
            "name": "vip_gift",
            "title": "VIP gift",
            "kind": "percent_off",
            "percent": 20,
            "points": 100,
            "tiers": ["VIP"],
        },
    ],
}


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
