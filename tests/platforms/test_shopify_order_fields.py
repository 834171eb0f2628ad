"""What the Shopify normaliser reads from an order's lists and optional parts, on both paths.

An order's fulfillments, cart attributes, addresses, consents, metafields and tags each give
one field of the canonical order or customer, by a rule of their own (the last tracking page,
the first referral code with a value, the most telling address). Each test edits the genuine
order fixture as Shopify would send it and checks the field on the full path (``normalise``
of the parsed JSON) and on intake's fast path (``normalise_order`` of the decoded bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from deliveries import fixture_json

from postpurchase.events import CanonicalEvent
from postpurchase.platforms import shopify

RECEIVED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def _full(body: bytes) -> CanonicalEvent:
    event = shopify.normalise("orders/create", json.loads(body), received_at=RECEIVED)
    assert event is not None
    return event


def _fast(body: bytes) -> CanonicalEvent:
    order = shopify.decoded_order("orders/create", body)
    assert order is not None, "the fast path must take this order"
    event = shopify.normalise_order(
        "orders/create", order, received_at=RECEIVED, region=shopify.DEFAULT_REGION, notes=[]
    )
    # Checked without pydantic, the event is its stored JSON: read as processing reads it.
    return CanonicalEvent.model_validate_json(event.payload_json())


@pytest.fixture(params=[_full, _fast], ids=["full path", "fast path"])
def event_of(request: Any) -> Callable[[dict[str, Any]], CanonicalEvent]:
    def event(order: dict[str, Any]) -> CanonicalEvent:
        return request.param(json.dumps(order, ensure_ascii=False).encode())

    return event


def _order() -> dict[str, Any]:
    return fixture_json("shopify/orders_create.json")


def _fulfillment(tracking_url: str | None) -> dict[str, Any]:
    return {"status": "success", "tracking_company": "Canada Post", "tracking_url": tracking_url}


def test_the_last_fulfillment_with_a_tracking_page_gives_the_orders(event_of):
    order = _order()
    order["fulfillments"] = [
        _fulfillment("https://www.canadapost-postescanada.ca/track?pin=7023210039414604"),
        _fulfillment("https://www.canadapost-postescanada.ca/track?pin=7023210039414605"),
        _fulfillment(None),
        _fulfillment(""),
    ]

    event = event_of(order)

    assert event.order is not None
    assert event.order.tracking_url == order["fulfillments"][1]["tracking_url"]


def test_an_order_without_a_tracking_page_has_none(event_of):
    order = _order()
    order["fulfillments"] = [_fulfillment(None)]

    event = event_of(order)

    assert event.order is not None and event.order.tracking_url is None
    assert "tracking_url" not in event.as_payload()["order"]


def test_the_first_referral_attribute_with_a_value_gives_the_code(event_of):
    order = _order()
    order["note_attributes"] = [
        {"name": "gift_message", "value": "Happy birthday!"},
        {"name": "referral_code", "value": "   "},
        {"name": "referral_code", "value": " REF-7KQ9MX4T "},
        {"name": "referral_code", "value": "REF-OTHER"},
    ]

    event = event_of(order)

    assert event.order is not None and event.order.referral_code == "REF-7KQ9MX4T"


def test_a_long_referral_code_is_cut_to_the_columns_length(event_of):
    order = _order()
    order["note_attributes"] = [{"name": "referral_code", "value": "R" * 80}]

    event = event_of(order)

    assert event.order is not None and event.order.referral_code == "R" * 64


def test_no_referral_attribute_leaves_the_code_out(event_of):
    order = _order()
    order["note_attributes"] = [{"name": "gift_message", "value": "REF-7KQ9MX4T"}]

    event = event_of(order)

    assert event.order is not None and event.order.referral_code is None
    assert "referral_code" not in event.as_payload()["order"]


def _zone_of(event: CanonicalEvent) -> str | None:
    assert event.order is not None and event.order.customer is not None
    return event.order.customer.time_zone


def test_the_shipping_address_gives_the_customers_time_zone_first(event_of):
    order = _order()
    order["shipping_address"].update(province="Ontario", province_code="ON")
    order["billing_address"].update(country="Australia", country_code="AU", province_code="NSW")

    assert _zone_of(event_of(order)) == "America/Toronto"


def test_the_billing_address_gives_it_when_the_shipping_address_does_not(event_of):
    order = _order()
    order["shipping_address"].update(country_code=None, province_code=None)
    order["billing_address"].update(country="Australia", country_code="AU", province_code="NSW")

    assert _zone_of(event_of(order)) == "Australia/Sydney"


def test_the_default_address_gives_it_last(event_of):
    order = _order()
    order["shipping_address"] = None
    order["billing_address"] = None
    order["customer"]["default_address"].update(province="Alberta", province_code="AB")

    assert _zone_of(event_of(order)) == "America/Edmonton"


def test_no_address_that_tells_leaves_the_time_zone_out(event_of):
    order = _order()
    order["shipping_address"] = None
    order["billing_address"] = None
    order["customer"]["default_address"] = None

    event = event_of(order)

    assert _zone_of(event) is None
    assert "time_zone" not in event.as_payload()["order"]["customer"]


@pytest.mark.parametrize(
    ("state", "answer"),
    [("subscribed", True), ("UNSUBSCRIBED", False), ("not_subscribed", None), ("pending", None)],
)
def test_only_a_customers_own_answer_is_a_consent(event_of, state, answer):
    order = _order()
    order["customer"]["sms_marketing_consent"] = {
        "state": state,
        "opt_in_level": "single_opt_in",
        "consent_updated_at": "2026-11-19T10:02:00-05:00",
        "consent_collected_from": "SHOPIFY",
    }

    event = event_of(order)

    assert event.order is not None and event.order.customer is not None
    customer = event.order.customer
    assert customer.sms_marketing_consent is answer
    written = event.as_payload()["order"]["customer"]
    if answer is None:
        assert "sms_marketing_consent" not in written
        assert "sms_marketing_consent_at" not in written
    else:
        assert customer.sms_marketing_consent_at == datetime(2026, 11, 19, 15, 2, tzinfo=UTC)
    # the fixture's e-mail consent, untouched by the SMS one
    assert customer.email_marketing_consent is True


def test_the_birth_date_metafield_gives_the_birthday(event_of):
    order = _order()
    order["customer"]["metafields"] = [
        {"namespace": "custom", "key": "favourite_colour", "value": "green"},
        {"namespace": "facts", "key": "birth_date", "value": "1990-12-02"},
    ]

    event = event_of(order)

    assert event.order is not None and event.order.customer is not None
    assert event.order.customer.birthday == date(1990, 12, 2)


def test_a_customer_without_metafields_has_no_birthday(event_of):
    event = event_of(_order())

    assert "birthday" not in event.as_payload()["order"]["customer"]


@pytest.mark.parametrize(
    ("tags", "read"),
    [("newsletter, repeat buyer", ["newsletter", "repeat buyer"]), (" vip ,, ", ["vip"])]
    + [("", []), (None, [])],
)
def test_tags_are_the_comma_separated_words(event_of, tags, read):
    order = _order()
    order["customer"]["tags"] = tags

    event = event_of(order)

    assert event.order is not None and event.order.customer is not None
    assert event.order.customer.tags == read


def test_shipping_is_the_shipping_lines_sum_without_a_shipping_total(event_of):
    order = _order()
    del order["total_shipping_price_set"]
    order["shipping_lines"].append(
        {"price": "2.50", "price_set": {"shop_money": {"amount": "2.50", "currency_code": "USD"}}}
    )

    event = event_of(order)

    assert event.order is not None and event.order.total_shipping == Decimal("8.45")
