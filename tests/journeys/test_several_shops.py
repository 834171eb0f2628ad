"""Several shops in one engine, on SQLite and PostgreSQL: genuine payloads from two Shopify
shops (each signing with its own secret) and two WooCommerce sites, sharing customer and order
ids, never touch each other's rows.

The payloads are the documented ones; where a story needs the second shop's copy to differ,
only values change (an email, a status, a later ``updated_at``), never the fields.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from postpurchase.cli import main
from postpurchase.loyalty.ledger import balance
from postpurchase.privacy.requests import fulfil_pending
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Customer,
    Order,
    PrivacyRequest,
    Touchpoint,
    TouchpointStatus,
)
from tests.journeys.test_genuine_payloads import Shop, _shop, genuine, utc
from tests.webhooks.deliveries import OTHER_SHOP, OTHER_SHOP_SECRET, SHOP, SHOPIFY_SECRET

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SITE_DE, SITE_FR = "https://shop.example.de/", "https://shop.example.fr/"


@pytest.fixture
def shops(db_url, store, tmp_path):
    """One engine serving two Shopify shops (a secret each) and WooCommerce sites."""
    made = _shop(db_url, store, tmp_path, shopify_webhook_secrets={OTHER_SHOP: OTHER_SHOP_SECRET})
    with made.client:
        yield made


def _by_shop(rows) -> dict:
    return {row.shop: row for row in rows}


def _shopify_orders(shops: Shop) -> tuple[dict, dict]:
    """The documented order 450789469 (customer 207119551) from both shops; the second shop's
    copy has its own customer email and is newer, so it would win if the rows were shared."""
    order = genuine("shopify/admin_api_order_wrapped.json")["order"]
    other = {**order, "email": "bob@second-store.example"}
    other["customer"] = {**order["customer"], "email": "bob@second-store.example"}
    newer = (utc(order["updated_at"]) + timedelta(hours=1)).isoformat()
    other["updated_at"] = other["customer"]["updated_at"] = newer
    refund = genuine("shopify/admin_api_refund_wrapped.json")["refund"]
    shops.now = utc(refund["created_at"]) + timedelta(minutes=1)
    first = shops.send.shopify("orders/create", order, shop=SHOP, secret=SHOPIFY_SECRET)
    second = shops.send.shopify("orders/create", other, shop=OTHER_SHOP, secret=OTHER_SHOP_SECRET)
    assert (first.status_code, second.status_code) == (202, 202), second.json()
    shops.drain()
    return order, refund


def test_a_shops_signed_events_only_change_its_own_customer_and_orders(shops, store):
    order, refund = _shopify_orders(shops)

    customers = _by_shop(shops.rows(Customer))
    assert set(customers) == {SHOP, OTHER_SHOP}
    assert {c.external_id for c in customers.values()} == {str(order["customer"]["id"])}
    assert customers[SHOP].email == "bob.norman@hostmail.com"  # the other shop's is not ours
    assert customers[OTHER_SHOP].email == "bob@second-store.example"
    orders = _by_shop(shops.rows(Order))
    assert {shop: o.customer_id for shop, o in orders.items()} == {
        shop: c.id for shop, c in customers.items()
    }

    # A review request planned for each shop's order; then a refund in the first shop only.
    with transaction(store) as session:
        for shop, placed in orders.items():
            session.add(
                Touchpoint(
                    subject_key=f"order:{placed.id}",
                    campaign_id="review_request",
                    channel="email",
                    customer_id=placed.customer_id,
                    order_id=placed.id,
                    shop=shop,
                    due_at=shops.now + timedelta(days=7),
                )
            )
    assert shops.send.shopify("refunds/create", refund, shop=SHOP).status_code == 202
    shops.drain()

    orders = _by_shop(shops.rows(Order))
    assert orders[SHOP].refunded_amount == Decimal("209.00")
    assert orders[OTHER_SHOP].refunded_amount == Decimal("0")
    touchpoints = _by_shop(shops.rows(Touchpoint))
    assert touchpoints[SHOP].status is TouchpointStatus.CANCELLED
    assert touchpoints[SHOP].reason == "cancelled by order.refunded"
    assert touchpoints[OTHER_SHOP].status is TouchpointStatus.PLANNED


def test_a_customer_request_and_shop_redact_reach_only_the_shop_that_signed(shops, store):
    _shopify_orders(shops)
    # The second shop's customer asks to be forgotten; then the second shop uninstalls.
    redact = genuine("shopify/customers_redact_docs.json")
    redact["shop_domain"] = OTHER_SHOP  # the docs' placeholder "{shop}.myshopify.com"
    redact["customer"] = {**redact["customer"], "id": 207119551}
    sent = shops.send.shopify("customers/redact", redact, shop=OTHER_SHOP, secret=OTHER_SHOP_SECRET)
    assert sent.status_code == 202
    # a body naming another shop than the one whose secret signed it is refused
    stray = {**redact, "shop_domain": SHOP}
    sent = shops.send.shopify("customers/redact", stray, shop=OTHER_SHOP, secret=OTHER_SHOP_SECRET)
    assert sent.status_code == 202
    assert fulfil_pending(store, shops.settings, now=shops.now) == 2

    customers = _by_shop(shops.rows(Customer))
    assert customers[OTHER_SHOP].email is None and customers[OTHER_SHOP].first_name is None
    assert customers[SHOP].email == "bob.norman@hostmail.com"
    assert customers[SHOP].first_name == "Bob"
    with store() as session:
        results = session.scalars(select(PrivacyRequest.result).order_by(PrivacyRequest.id)).all()
    assert results[0]["customers"] == 1
    assert "is not the shop that signed the request" in results[1]["refused"]

    shop_redact = {**genuine("shopify/shop_redact_docs.json"), "shop_domain": OTHER_SHOP}
    sent = shops.send.shopify("shop/redact", shop_redact, shop=OTHER_SHOP, secret=OTHER_SHOP_SECRET)
    assert sent.status_code == 202
    assert fulfil_pending(store, shops.settings, now=shops.now) == 1
    assert _by_shop(shops.rows(Customer))[SHOP].email == "bob.norman@hostmail.com"
    with store() as session:
        erased = session.scalars(select(PrivacyRequest).order_by(PrivacyRequest.id)).all()[-1]
    assert (erased.kind, erased.shop, erased.subject) == ("erase_shop", OTHER_SHOP, OTHER_SHOP)


def _woo(shops: Shop, body: dict, site: str, topic: str = "order.created") -> None:
    sent = shops.send.woocommerce(topic, body, headers={"X-WC-Webhook-Source": site})
    assert sent.status_code == 202, sent.json()


def test_woocommerce_sites_sharing_an_order_id_keep_their_own_points_and_messages(shops, store):
    body = genuine("woocommerce/order_processing_docs.json")  # order 727, paid
    shops.now = utc(body["date_modified_gmt"] + "Z") + timedelta(minutes=1)
    _woo(shops, body, SITE_DE)
    _woo(shops, body, SITE_FR)
    shops.drain()

    customers = _by_shop(shops.rows(Customer))
    assert set(customers) == {SITE_DE, SITE_FR}
    assert {c.external_id for c in customers.values()} == {"guest:john.doe@example.com"}
    orders = _by_shop(shops.rows(Order))
    assert {o.external_id for o in orders.values()} == {"727"}
    with store() as session:
        points = {shop: balance(session, c.id) for shop, c in customers.items()}
    assert points[SITE_DE] == points[SITE_FR] > 0  # each site's first order earns its own
    touchpoints = _by_shop(shops.rows(Touchpoint))
    assert {shop: t.campaign_id for shop, t in touchpoints.items()} == {
        SITE_DE: "points_earned",
        SITE_FR: "points_earned",
    }
    assert {shop: t.customer_id for shop, t in touchpoints.items()} == {
        shop: c.id for shop, c in customers.items()
    }

    # The German site cancels its order 727: the French one is untouched.
    cancelled = {**body, "status": "cancelled"}
    modified = utc(body["date_modified_gmt"] + "Z") + timedelta(minutes=5)
    cancelled["date_modified_gmt"] = modified.strftime("%Y-%m-%dT%H:%M:%S")
    shops.now = modified + timedelta(minutes=1)
    _woo(shops, cancelled, SITE_DE, topic="order.updated")
    shops.drain()

    orders = _by_shop(shops.rows(Order))
    assert orders[SITE_DE].cancelled_at is not None and orders[SITE_FR].cancelled_at is None
    touchpoints = _by_shop(shops.rows(Touchpoint))
    assert touchpoints[SITE_DE].status is TouchpointStatus.CANCELLED
    assert touchpoints[SITE_FR].status is TouchpointStatus.PLANNED
    with store() as session:
        after = {shop: balance(session, c.id) for shop, c in customers.items()}
    assert after == {SITE_DE: 0, SITE_FR: points[SITE_FR]}

    # The command line names both when a customer is in several shops, and takes --shop.
    def run(*args: str):
        return CliRunner().invoke(main, ["loyalty", "balance", *args])

    ambiguous = run("john.doe@example.com")
    assert ambiguous.exit_code == 2
    assert SITE_DE in ambiguous.output and SITE_FR in ambiguous.output
    assert "--shop" in ambiguous.output
    named = run("john.doe@example.com", "--shop", SITE_FR)
    assert named.exit_code == 0, named.output
    assert f"{points[SITE_FR]} points" in named.output.splitlines()[0]
