"""The WooCommerce normaliser on genuine webhook bodies, without the HTTP route around it.

The payloads are WooCommerce's documented order #727 (processing, then completed) and two
documented products, in tests/fixtures/genuine/woocommerce; the values asserted are theirs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genuine import genuine

from postpurchase.events import EventType
from postpurchase.platforms import woocommerce
from postpurchase.platforms.fields import InvalidPayload

RECEIVED = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def test_a_processing_order_is_paid_with_its_lines_and_money():
    body = genuine("woocommerce/order_processing_docs.json")
    notes: list[str] = []

    event = woocommerce.normalise("order.created", body, notes=notes)

    assert event is not None and event.type is EventType.ORDER_PAID
    order = event.order
    assert (order.external_id, order.name, order.currency) == ("727", "#727", "USD")
    assert (order.total, order.total_tax, order.total_shipping) == (
        Decimal(body["total"]),
        Decimal(body["total_tax"]),
        Decimal(body["shipping_lines"][0]["total"]),
    )
    assert order.financial_status == "processing"
    # WooCommerce's *_gmt times carry no zone: they are UTC
    assert order.paid_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert event.occurred_at == order.paid_at
    # "(555) 555-5555" in a US billing address, as E.164; a guest keyed by address
    assert order.customer.phone == "+15555555555"
    assert order.customer.external_id == f"guest:{body['billing']['email']}"
    assert notes == []
    assert [(line.title, line.quantity, line.unit_price, line.sku) for line in order.lines] == [
        ("Woo Single #1", 2, Decimal("3"), None),
        # the name's "&ndash;" HTML entity decoded once
        ("Ship Your Idea – Color: Black, Size: M Test", 1, Decimal("12"), "Bar3"),
    ]


def test_the_completed_order_is_fulfilled_and_keys_apart_from_the_processing_one():
    processing = woocommerce.normalise(
        "order.created", genuine("woocommerce/order_processing_docs.json")
    )
    completed = woocommerce.normalise(
        "order.updated", genuine("woocommerce/order_completed_docs.json")
    )

    assert completed is not None and completed.type is EventType.ORDER_FULFILLED
    assert completed.occurred_at == datetime(2017, 3, 22, 19, 30, 35, tzinfo=UTC)
    assert processing is not None
    # Same webhook, same order, a new status and time: another delivery, not a duplicate.
    assert woocommerce.dedupe_key_parts("12", processing) != woocommerce.dedupe_key_parts(
        "12", completed
    )
    assert woocommerce.dedupe_key_parts("12", completed) == (
        "12",
        "727",
        "2017-03-22T19:30:35+00:00",
        "completed",
    )


@pytest.mark.parametrize(
    ("name", "categories"),
    [
        ("woocommerce/product_premium_quality_docs.json", ["Clothing", "T-shirts"]),
        ("woocommerce/product_ship_your_idea_docs.json", ["Clothing", "T-shirts"]),
    ],
)
def test_a_product_webhook_describes_the_product(name, categories):
    body = genuine(name)

    event = woocommerce.normalise("product.updated", body, received_at=RECEIVED)

    assert event is not None and event.type is EventType.PRODUCT_UPDATED
    product = event.product
    assert (product.external_id, product.title, product.handle) == (
        str(body["id"]),
        body["name"],
        body["slug"],
    )
    assert product.product_type == categories[0] and product.collections == categories
    assert product.url == body["permalink"]  # published
    assert product.image_url == body["images"][0]["src"]


def test_topics_the_engine_ignores_and_a_broken_field():
    body = genuine("woocommerce/order_completed_docs.json")

    assert woocommerce.normalise("order.deleted", body) is None
    assert woocommerce.normalise("coupon.created", body) is None
    body["line_items"][0]["quantity"] = "two"
    with pytest.raises(InvalidPayload, match=r"line_items\.0\.quantity"):
        woocommerce.normalise("order.updated", body)


@pytest.mark.parametrize(
    ("body", "webhook_id"),
    [(b"webhook_id=12", "12"), (b"webhook_id=", None), (b'{"id": 727}', None)],
)
def test_the_creation_ping_is_told_from_a_delivery(body, webhook_id):
    assert woocommerce.ping_webhook_id(body) == webhook_id
