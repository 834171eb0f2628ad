"""The Shopify normaliser on genuine webhook bodies, without the HTTP route around it.

Each payload is read from tests/fixtures/genuine/shopify (its ``.source.md`` says where it
comes from); the values asserted are the payload's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genuine import genuine

from postpurchase.events import EventType
from postpurchase.platforms import shopify
from postpurchase.platforms.fields import InvalidPayload
from postpurchase.platforms.shopify_bodies import TopicMismatch

RECEIVED = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
SHOP = "openresourcing.myshopify.com"


def test_a_dev_store_order_without_an_email_keeps_its_phone_and_money():
    body = genuine("shopify/dev_store_aud_orders_create.json")
    notes: list[str] = []

    event = shopify.normalise("orders/create", body, received_at=RECEIVED, notes=notes)

    assert event is not None and event.type is EventType.ORDER_PLACED
    order = event.order
    assert (order.external_id, order.name, order.currency) == (str(body["id"]), "#1005", "AUD")
    assert (order.subtotal, order.total_shipping, order.total) == (
        Decimal("50.00"),
        Decimal("10.00"),
        Decimal(body["total_price"]),
    )
    # "email": "" and a customer with "email": null: no address, and nothing to note
    assert order.customer.email is None and notes == []
    assert order.customer.phone == body["customer"]["phone"] == "+61413824449"
    # "not_subscribed" is a customer who never answered: unknown, not a "no"
    assert order.customer.sms_marketing_consent is None
    [line] = order.lines
    assert line.title == body["line_items"][0]["title"]  # the quotes kept as sent
    assert (line.quantity, line.unit_price) == (1, Decimal("50.00"))
    assert event.occurred_at == datetime.fromisoformat(body["updated_at"])


def test_the_test_notification_is_a_voided_order_placed_with_its_contact():
    body = genuine("shopify/test_notification_orders_create.json")

    event = shopify.normalise("orders/create", body, received_at=RECEIVED)

    assert event is not None and event.type is EventType.ORDER_PLACED
    assert event.order.financial_status == "voided"
    assert event.order.customer.email == body["customer"]["email"]
    assert event.order.total_discounts == Decimal(body["total_discounts"])


def test_orders_paid_refuses_a_body_that_is_not_paid():
    body = genuine("shopify/test_notification_orders_create.json")  # financial_status voided

    with pytest.raises(TopicMismatch, match="not paid"):
        shopify.normalise("orders/paid", body, received_at=RECEIVED)


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("shopify/admin_api_order_wrapped.json", "orders/create"),
        ("shopify/admin_api_refund_wrapped.json", "refunds/create"),
    ],
)
def test_admin_api_responses_are_refused_as_wrapped(name, topic):
    with pytest.raises(TopicMismatch, match="wrapped"):
        shopify.normalise(topic, genuine(name), received_at=RECEIVED)


def test_the_consent_topics_touch_only_consent():
    email = genuine("shopify/customers_email_marketing_consent_update.json")
    sms = genuine("shopify/customers_marketing_consent_update.json")

    for topic, body in [
        ("customers_email_marketing_consent/update", email),
        ("customers_marketing_consent/update", sms),
    ]:
        event = shopify.normalise(topic, body, received_at=RECEIVED)
        assert event is not None and event.type is EventType.CUSTOMER_UPDATED
        # The documented samples say "not_subscribed" and null: no answer either way, and
        # the address the email topic carries is not taken as a profile change.
        assert event.customer.external_id == "706405506930370084"
        assert event.customer.email is None
        assert event.customer.email_marketing_consent is None
        assert event.customer.sms_marketing_consent is None
        assert event.occurred_at == RECEIVED  # no consent_updated_at: dated on arrival


def test_an_unsubscribe_on_the_consent_topic_is_a_dated_no():
    body = genuine("shopify/customers_email_marketing_consent_update.json")
    body["email_marketing_consent"].update(
        state="unsubscribed", consent_updated_at="2026-11-29T08:15:00-05:00"
    )

    event = shopify.normalise(
        "customers_email_marketing_consent/update", body, received_at=RECEIVED
    )

    assert event is not None
    assert event.customer.email_marketing_consent is False
    assert event.customer.email_marketing_consent_at == datetime(2026, 11, 29, 13, 15, tzinfo=UTC)
    assert event.occurred_at == event.customer.email_marketing_consent_at


def test_product_webhooks_describe_and_delete_the_product():
    created = genuine("shopify/products_create_docs.json")
    deleted = genuine("shopify/products_delete_docs.json")

    described = shopify.normalise("products/create", created, received_at=RECEIVED, shop=SHOP)
    gone = shopify.normalise("products/delete", deleted, received_at=RECEIVED, shop=SHOP)

    assert described is not None and described.type is EventType.PRODUCT_UPDATED
    product = described.product
    assert (product.external_id, product.product_type, product.vendor) == (
        str(created["id"]),
        created["product_type"],
        created["vendor"],
    )
    assert product.tags == [t.strip() for t in created["tags"].split(",")]
    assert product.url == f"https://{SHOP}/products/{created['handle']}"
    assert gone is not None and gone.type is EventType.PRODUCT_DELETED
    assert gone.product.external_id == str(deleted["id"]) == product.external_id
    assert gone.occurred_at == RECEIVED  # a deletion carries no time of its own


def test_a_topic_the_engine_ignores_is_none_and_a_broken_field_is_named():
    body = genuine("shopify/dev_store_aud_orders_create.json")

    assert shopify.normalise("orders/edited", body, received_at=RECEIVED) is None
    body["line_items"][0]["quantity"] = "one"
    with pytest.raises(InvalidPayload, match=r"line_items\.0\.quantity"):
        shopify.normalise("orders/create", body, received_at=RECEIVED)
