"""What the platform edge refuses, and what it cleans, black-box over HTTP.

A refusal is a 4xx whose JSON names the field, kept in rejected_webhooks, with nothing in the
inbox: a value the tables cannot hold, a time in the future, a body that is not what its
Shopify topic says. An unusable email or phone is left out of an otherwise good event, which
is kept (a shop's order is never lost for a typo in an address).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from deliveries import (
    Sender,
    fixture_json,
    inbox_rows,
    intake_settings,
    rejected_rows,
)
from fastapi.testclient import TestClient

from postpurchase.webhooks.app import create_app

ORDER = "shopify/orders_create.json"
WOO_ORDER = "woocommerce/order_processing.json"


def _order(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(fixture_json(ORDER))
    body.update(changes)
    return body


def _line(**changes: Any) -> dict[str, Any]:
    body = _order()
    body["line_items"][0].update(changes)
    return body


def _refused(response, field: str) -> str:
    assert response.status_code == 422, response.json()
    fields = {e["field"]: e["problem"] for e in response.json()["errors"]}
    assert field in fields, fields
    return fields[field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_order(name="#" + "9" * 64), "canonical event: order.name"),
        (_order(financial_status="p" * 33), "canonical event: order.financial_status"),
        (_order(fulfillment_status="f" * 33), "canonical event: order.fulfillment_status"),
        (_line(sku="S" * 129), "canonical event: order.lines.0.sku"),
        (_line(vendor="V" * 256), "canonical event: order.lines.0.vendor"),
        (_line(quantity=10**20), "canonical event: order.lines.0.quantity"),
        (_line(quantity=2**31), "canonical event: order.lines.0.quantity"),
        (
            _order(total_price="123456789012.00", total_price_set=None),
            "canonical event: order.total",
        ),
    ],
    ids=[
        "name",
        "financial_status",
        "fulfillment_status",
        "sku",
        "vendor",
        "quantity-1e20",
        "quantity-2^31",
        "total-1e11",
    ],
)
def test_values_the_tables_cannot_hold_are_refused_naming_the_field(send, store, body, field):
    _refused(send.shopify("orders/updated", body), field)
    assert inbox_rows(store) == []
    assert [r.status_code for r in rejected_rows(store)] == [422]


def test_values_at_the_limits_are_accepted(send, store):
    body = _line(sku="S" * 128, vendor="V" * 255, quantity=2**31 - 1)
    body["name"] = "#" + "9" * 63
    assert send.shopify("orders/updated", body).status_code == 202
    assert len(inbox_rows(store)) == 1


def test_generic_events_carry_the_same_limits(send, store):
    event = {
        "id": "evt-limits",
        "type": "order.placed",
        "occurred_at": "2026-11-27T10:00:00Z",
        "order": {
            "external_id": "G-1",
            "currency": "EUR",
            "lines": [{"external_id": "1", "title": "Tea", "quantity": 10**20, "unit_price": "1"}],
        },
    }
    _refused(send.generic(event), "order.lines.0.quantity")
    assert inbox_rows(store) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"updated_at": "8999-01-01T00:00:00Z"}, "occurred_at"),
        ({"cancelled_at": "2999-05-01T00:00:00Z"}, "order.cancelled_at"),
    ],
)
def test_times_in_the_future_are_refused(send, store, changes, field):
    problem = _refused(send.shopify("orders/updated", _order(**changes)), field)
    assert "is in the future" in problem
    assert inbox_rows(store) == []


def test_a_time_a_few_minutes_ahead_is_clock_drift_and_accepted(send, store):
    soon = (datetime.now(UTC) + timedelta(minutes=3)).isoformat()
    assert send.shopify("orders/updated", _order(updated_at=soon)).status_code == 202


@pytest.mark.parametrize("hours", [-5, 14])
def test_a_time_in_another_zone_is_judged_by_its_instant(send, store, hours):
    zone = timezone(timedelta(hours=hours))
    now = datetime.now(UTC)
    # Written with an offset of its own: its clock reads hours away from UTC's, either way.
    for ahead, status in ((timedelta(minutes=3), 202), (timedelta(minutes=30), 422)):
        updated_at = (now + ahead).astimezone(zone).isoformat(timespec="seconds")
        assert send.shopify("orders/updated", _order(updated_at=updated_at)).status_code == status


def test_woocommerce_far_future_modification_is_refused(send, store):
    body = fixture_json(WOO_ORDER)
    body["date_modified_gmt"] = "8999-12-31T00:00:00"
    _refused(send.woocommerce("order.updated", body), "occurred_at")
    assert inbox_rows(store) == []


# --- the topic header is not signed: the body must say the same ---------------------------------


@pytest.mark.parametrize(
    ("topic", "body", "field", "problem"),
    [
        (
            "orders/cancelled",
            _order(),
            "cancelled_at",
            "an order in orders/cancelled must be cancelled",
        ),
        ("orders/paid", _order(financial_status="pending"), "financial_status", "is not paid"),
        ("orders/fulfilled", _order(), "fulfillment_status", "where Shopify sends 'fulfilled'"),
        ("refunds/create", _order(), "body", "is an order, but refunds/create needs a refund"),
        (
            "fulfillment_events/create",
            _order(),
            "body",
            "is an order, but fulfillment_events/create needs a fulfillment event",
        ),
        (
            "customers/update",
            _order(),
            "body",
            "is an order, but customers/update needs a customer",
        ),
        (
            "orders/create",
            fixture_json("shopify/refunds_create.json"),
            "body",
            "is a refund, but orders/create needs an order",
        ),
    ],
)
def test_a_body_that_is_not_what_the_topic_says_is_refused(
    send, store, topic, body, field, problem
):
    response = send.shopify(topic, body)
    assert response.json()["reason"] == "body does not match X-Shopify-Topic"
    assert problem in _refused(response, field)
    assert inbox_rows(store) == []
    [kept] = rejected_rows(store)
    assert (kept.status_code, kept.headers.get("x-shopify-topic")) == (422, topic)


def test_the_genuine_topics_still_pass(send, store):
    assert send.shopify("orders/create", _order()).status_code == 202
    cancelled = _order(cancelled_at="2026-11-21T08:00:00-05:00", financial_status="refunded")
    assert send.shopify("orders/cancelled", cancelled).status_code == 202
    fulfilled = _order(fulfillment_status="fulfilled")
    assert send.shopify("orders/fulfilled", fulfilled).status_code == 202
    refund = fixture_json("shopify/refunds_create.json")
    assert send.shopify("refunds/create", refund).status_code == 202
    event = fixture_json("shopify/fulfillment_events_create.json")
    assert send.shopify("fulfillment_events/create", event).status_code == 202
    customer = fixture_json("shopify/customers_update.json")
    assert send.shopify("customers/update", customer).status_code == 202
    assert len(inbox_rows(store)) == 6


# --- contacts: unusable addresses are left out, the event kept ----------------------------------


def test_an_unusable_shopify_email_is_left_out_and_the_order_kept(send, store):
    body = _order(email="ines.moreau@example.com\r\nBcc: all@example.net")
    body["customer"] = {**body["customer"], "email": None}
    response = send.shopify("orders/updated", body)

    assert response.status_code == 202
    [note] = response.json()["notes"]
    assert note.startswith("customer email left out: ")
    [row] = inbox_rows(store)
    assert "email" not in row.payload["order"]["customer"]
    assert row.payload["order"]["name"] == "#1042"


def test_a_woocommerce_guest_with_an_unusable_email_keeps_the_order(send, store):
    body = fixture_json(WOO_ORDER)
    body["billing"]["email"] = "kim at example dot de"
    body["customer_id"] = 0
    response = send.woocommerce("order.updated", body)
    assert response.status_code == 202
    assert response.json()["notes"][0].startswith("customer email left out: ")
    [row] = inbox_rows(store)
    assert "customer" not in row.payload["order"]  # a guest without an address: no handle


def test_generic_contacts_are_cleaned_like_the_platforms(send, store):
    event = {
        "id": "evt-contacts",
        "type": "customer.updated",
        "occurred_at": "2026-11-27T10:00:00Z",
        "customer": {
            "external_id": "c-9",
            "email": "mara@example.com\r\nX-Injected: 1",
            "phone": "(415) 555-2671",
        },
    }
    response = send.generic(event)
    assert response.status_code == 202
    [note] = response.json()["notes"]
    assert note.startswith("customer.email left out: ") and "U+000A, U+000D" in note
    [row] = inbox_rows(store)
    assert row.payload["customer"] == {"external_id": "c-9", "phone": "+14155552671"}


def test_local_phones_are_read_as_the_shops_country(db_url, store):
    settings = intake_settings(db_url, shop_country="GB")
    with TestClient(create_app(settings, session_factory=store)) as client:
        event = {
            "id": "evt-gb",
            "type": "customer.updated",
            "occurred_at": "2026-11-27T10:00:00Z",
            "customer": {"external_id": "c-10", "phone": "020 7946 0958"},
        }
        assert Sender(client).generic(event).status_code == 202
    [row] = inbox_rows(store)
    assert row.payload["customer"]["phone"] == "+442079460958"


def test_woocommerce_phone_follows_the_billing_country(send, store):
    body = fixture_json(WOO_ORDER)
    body["billing"]["phone"] = "0221 4710 0"  # a Köln landline, written as locals do
    assert send.woocommerce("order.updated", body).status_code == 202
    [row] = inbox_rows(store)
    assert row.payload["order"]["customer"]["phone"].startswith("+49221")


# --- test orders ---------------------------------------------------------------------------------


def test_a_refund_paid_back_by_test_transactions_is_a_test_order(send, store):
    refund = fixture_json("shopify/refunds_create.json")
    for transaction in refund["transactions"]:
        transaction["test"] = True
    response = send.shopify("refunds/create", refund)
    assert (response.status_code, response.json()["status"]) == (202, "ignored")
    assert response.json()["notes"] == ["test order"]
    real = fixture_json("shopify/refunds_create.json")  # test: false on every transaction
    assert send.shopify("refunds/create", real).json()["status"] == "accepted"


def test_a_test_notification_under_any_order_topic_is_ignored_not_refused(send, store):
    """Shopify sends the same cancelled, voided test order for every topic's test button:
    it is dropped as a test order before its body is checked against the topic."""
    test_order = _order(test=True, financial_status="voided")
    for topic in ("orders/paid", "orders/fulfilled", "orders/cancelled"):
        response = send.shopify(topic, test_order)
        assert (response.status_code, response.json()["status"]) == (202, "ignored"), topic
    assert rejected_rows(store) == []
    assert {row.payload["ignored"] for row in inbox_rows(store)} == {"test order"}
