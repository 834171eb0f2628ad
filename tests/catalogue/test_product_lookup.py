"""Products first seen in an order are looked up through the platform's API, against fake
APIs on 127.0.0.1 that answer with genuine product documents; every failure leaves the
product unknown and asked again later, and nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fake_platform_apis import (
    SHOPIFY_TOKEN,
    WOO_KEY,
    WOO_SECRET,
    FakeShopifyAdmin,
    FakeWooCommerce,
    rate_limited,
)
from fakes.http_fake import Fault
from genuine_payloads import CULT, DELIVERED, ORDER, genuine
from processing.journeys import at
from sqlalchemy import select

from postpurchase.catalogue.lookup import MAX_ATTEMPTS, look_up_products
from postpurchase.catalogue.platform_api import ShopifyAdminApi, WooCommerceApi, configured_apis
from postpurchase.catalogue.products import note_products
from postpurchase.settings import Settings
from postpurchase.store.database import transaction
from postpurchase.store.models import Product, Touchpoint
from postpurchase.tasks.processing import look_up_unknown_products
from tests.webhooks.deliveries import SHOP

NOW = at("2026-11-20T15:00:00+00:00")
WOO_SITE = "https://shop.example.de/"  # the deliveries' X-WC-Webhook-Source
IPOD_DOCUMENT = genuine("shopify/admin_api_product_ipod_nano.json")


@pytest.fixture
def shopify_api() -> Iterator[FakeShopifyAdmin]:
    fake = FakeShopifyAdmin({"632910392": IPOD_DOCUMENT}).start()
    yield fake
    fake.stop()


@pytest.fixture
def woo_api() -> Iterator[FakeWooCommerce]:
    fake = FakeWooCommerce({"794": genuine("woocommerce/product_premium_quality_docs.json")})
    fake.start()
    yield fake
    fake.stop()


def shopify(fake: FakeShopifyAdmin, token: str = SHOPIFY_TOKEN, timeout: float = 2.0):
    return ShopifyAdminApi(fake.url, token, version="2025-10", timeout=timeout)


def unknown(store, *ids: str, source: str = "shopify") -> None:
    """Products first seen in an order of the shop the tests' webhooks come from."""
    shop = SHOP if source == "shopify" else WOO_SITE
    with transaction(store) as session:
        note_products(session, [(source, shop, product_id) for product_id in ids])


def product(store, external_id: str) -> Product:
    with store() as session:
        return session.scalars(select(Product).where(Product.external_id == external_id)).one()


def test_an_unknown_product_is_looked_up_and_then_counts(
    send, store, drain, campaigns_with, shopify_api
):
    config = campaigns_with(setup_tips=CULT)
    send.shopify("orders/paid", ORDER)
    drain(config=config)  # the order names product 632910392, which nobody described

    counts = look_up_products(store, {"shopify": shopify(shopify_api)}, now=NOW, limit=50)

    assert (counts.found, counts.failed, counts.waiting) == (1, 0, 0)
    [request] = shopify_api.requests
    assert request.path == "/admin/api/2025-10/products/632910392.json"
    assert request.headers["X-Shopify-Access-Token"] == SHOPIFY_TOKEN
    ipod = product(store, "632910392")
    assert (ipod.product_type, ipod.title, ipod.vendor) == (
        "Cult Products",
        "IPod Nano - 8GB",
        "Apple",
    )
    assert (
        ipod.image_url == "http://static.shopify.com/s/files/1/6909/3384/products/ipod-nano.png?0"
    )
    assert ipod.url == f"https://{shopify_api.url.removeprefix('http://')}/products/ipod-nano"

    send.shopify("fulfillment_events/create", DELIVERED)
    drain(config=config)
    with store() as session:
        assert session.scalars(select(Touchpoint.campaign_id)).all().count("setup_tips") == 1


def test_refused_credentials_leave_products_unknown_and_stop_asking(store, shopify_api):
    unknown(store, "632910392", "7513594", "9981")

    counts = look_up_products(
        store, {"shopify": shopify(shopify_api, "shpat_revoked")}, now=NOW, limit=50
    )

    assert (counts.found, counts.failed) == (0, 1)
    assert len(shopify_api.requests) == 1  # the others would be refused the same way
    first = product(store, "632910392")
    assert (first.source_updated_at, first.lookup_attempts) == (None, 1)
    assert first.lookup_after == NOW + timedelta(minutes=5)
    assert "401" in (first.lookup_error or "")
    assert product(store, "7513594").lookup_attempts == 0  # not asked, not penalised

    # with a working token, a later run finds it
    later = NOW + timedelta(minutes=6)
    counts = look_up_products(store, {"shopify": shopify(shopify_api)}, now=later, limit=50)
    assert counts.found == 1
    assert counts.not_on_platform == 2
    assert product(store, "632910392").product_type == "Cult Products"
    assert product(store, "632910392").lookup_error is None


def test_rate_limited_waits_as_long_as_the_platform_asks(store, shopify_api):
    unknown(store, "632910392", "7513594")
    shopify_api.fail_next(rate_limited("900"))

    counts = look_up_products(store, {"shopify": shopify(shopify_api)}, now=NOW, limit=50)

    assert (counts.failed, counts.waiting) == (1, 2)
    assert len(shopify_api.requests) == 1
    limited = product(store, "632910392")
    assert limited.lookup_after == NOW + timedelta(seconds=900)
    # not due before then: a run in the meantime does not ask for it again
    counts = look_up_products(
        store, {"shopify": shopify(shopify_api)}, now=NOW + timedelta(minutes=1), limit=50
    )
    assert [r.path.rsplit("/", 1)[-1] for r in shopify_api.requests[1:]] == ["7513594.json"]
    assert product(store, "632910392").source_updated_at is None


def test_a_platform_that_does_not_answer_in_time_is_asked_later(store, shopify_api):
    unknown(store, "632910392")
    shopify_api.fail_next(Fault(delay=1.0))

    counts = look_up_products(
        store, {"shopify": shopify(shopify_api, timeout=0.2)}, now=NOW, limit=50
    )

    assert counts.failed == 1
    assert "no answer within 0.2s" in product(store, "632910392").lookup_error
    counts = look_up_products(
        store, {"shopify": shopify(shopify_api)}, now=NOW + timedelta(minutes=5), limit=50
    )
    assert counts.found == 1


def test_a_dead_platform_and_server_errors_back_off(store, shopify_api):
    unknown(store, "632910392")
    dead = ShopifyAdminApi("http://127.0.0.1:9", SHOPIFY_TOKEN, version="2025-10", timeout=1.0)
    look_up_products(store, {"shopify": dead}, now=NOW, limit=50)
    assert "cannot connect" in product(store, "632910392").lookup_error

    shopify_api.fail_next(Fault(503, b"Service Unavailable"))
    second = NOW + timedelta(minutes=5)
    look_up_products(store, {"shopify": shopify(shopify_api)}, now=second, limit=50)
    failed = product(store, "632910392")
    assert (failed.lookup_attempts, failed.lookup_after) == (2, second + timedelta(minutes=10))


def test_a_product_the_platform_does_not_have_is_not_asked_again(store, shopify_api):
    unknown(store, "404404")

    look_up_products(store, {"shopify": shopify(shopify_api)}, now=NOW, limit=50)
    look_up_products(
        store, {"shopify": shopify(shopify_api)}, now=NOW + timedelta(days=1), limit=50
    )

    assert len(shopify_api.requests) == 1
    assert product(store, "404404").lookup_attempts == MAX_ATTEMPTS


def test_a_run_asks_for_at_most_its_limit(store, shopify_api):
    unknown(store, *(str(n) for n in range(1000, 1010)))

    counts = look_up_products(store, {"shopify": shopify(shopify_api)}, now=NOW, limit=3)

    assert len(shopify_api.requests) == 3
    assert (counts.not_on_platform, counts.waiting) == (3, 7)


def test_a_woocommerce_product_is_looked_up_with_its_categories(store, woo_api):
    unknown(store, "794", source="woocommerce")
    api = WooCommerceApi(woo_api.url, WOO_KEY, WOO_SECRET, timeout=2.0)

    counts = look_up_products(store, {"woocommerce": api}, now=NOW, limit=50)

    assert counts.found == 1
    stored = product(store, "794")
    assert (stored.product_type, stored.collections) == ("Clothing", ["Clothing", "T-shirts"])
    assert stored.url == "https://example.com/product/premium-quality-19/"


def test_woocommerce_refused_keys(store, woo_api):
    unknown(store, "794", source="woocommerce")
    api = WooCommerceApi(woo_api.url, WOO_KEY, "cs_wrong", timeout=2.0)

    counts = look_up_products(store, {"woocommerce": api}, now=NOW, limit=50)

    assert counts.failed == 1
    assert product(store, "794").source_updated_at is None


def test_a_webhook_meanwhile_wins_over_an_older_api_answer(send, store, drain, shopify_api):
    newer = dict(IPOD_DOCUMENT["product"], updated_at="2026-11-19T10:00:00-05:00")
    newer["product_type"] = "Music players"
    unknown(store, "632910392")
    send.shopify("products/update", newer)
    drain()

    look_up_products(store, {"shopify": shopify(shopify_api)}, now=NOW, limit=50)

    assert shopify_api.requests == []  # described meanwhile: no longer unknown
    assert product(store, "632910392").product_type == "Music players"


def test_without_credentials_nothing_is_asked(db_url, store):
    unknown(store, "632910392")
    settings = Settings(database_url=db_url)

    assert configured_apis(settings) == {}
    text = look_up_unknown_products(settings, now=NOW)

    assert "1 unknown without API credentials" in text
    assert product(store, "632910392").lookup_attempts == 0


def test_credentials_from_settings(db_url, store, shopify_api):
    unknown(store, "632910392")
    settings = Settings(
        database_url=db_url,
        shopify_shop=shopify_api.url,
        shopify_admin_token=SHOPIFY_TOKEN,
        woocommerce_url="https://shop.example.de",
        woocommerce_consumer_key=WOO_KEY,
        woocommerce_consumer_secret=WOO_SECRET,
    )

    assert sorted(configured_apis(settings)) == ["shopify", "woocommerce"]
    assert "1 found" in look_up_unknown_products(settings, now=NOW)
