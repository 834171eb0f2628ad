"""The Shopify route with realistic payloads, signed as Shopify signs them."""

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from deliveries import (
    OTHER_SHOP,
    OTHER_SHOP_SECRET,
    SHOP,
    SHOPIFY_SECRET,
    Sender,
    fixture_bytes,
    fixture_json,
    inbox_rows,
    intake_settings,
    rejected_rows,
)
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from postpurchase.events import CanonicalEvent, EventType
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine, session_factory
from postpurchase.store.models import ClaimStatus
from postpurchase.webhooks.app import create_app
from postpurchase.webhooks.signatures import base64_digest

ORDER = "shopify/orders_create.json"


def _event(row) -> CanonicalEvent:
    return CanonicalEvent.model_validate(row.payload)


def test_order_create_is_stored_as_a_canonical_order_placed(send, store):
    response = send.shopify("orders/create", fixture_bytes(ORDER), event_id="ev-1")

    assert response.status_code == 202
    [row] = inbox_rows(store)
    assert response.json() == {"status": "accepted", "event_id": row.id}
    assert row.source == "shopify"
    assert row.dedupe_key == f"shopify:{SHOP}:orders/create:ev-1"
    assert (row.event_type, row.topic, row.shop) == ("order.placed", "orders/create", SHOP)
    assert row.subject_id == "5923077374125"
    assert row.status is ClaimStatus.PENDING
    assert row.occurred_at == datetime(2026, 11, 20, 14, 14, 5, tzinfo=UTC)

    event = _event(row)
    order = event.order
    assert event.type is EventType.ORDER_PLACED
    assert order.name == "#1042"
    assert (order.currency, order.total, order.subtotal) == (
        "USD",
        Decimal("152.43"),
        Decimal("137.50"),
    )
    assert (order.total_tax, order.total_discounts, order.total_shipping) == (
        Decimal("8.98"),
        Decimal("15.28"),
        Decimal("5.95"),
    )
    assert order.updated_at == datetime(2026, 11, 20, 14, 14, 5, tzinfo=UTC)
    assert [(li.external_id, li.sku, li.quantity, li.unit_price) for li in order.lines] == [
        ("14458911342765", "TR-GTX-39-SLT", 1, Decimal("119.00")),
        ("14458911375533", "SOCK-MER-M", 2, Decimal("14.39")),
        ("14458911408301", None, 1, Decimal("5.00")),
    ]
    assert order.lines[0].variant_id == "44012345678901"
    assert order.lines[2].product_id is None
    customer = order.customer
    assert customer.external_id == "7061234567853"
    assert customer.email == "ines.moreau@example.com"
    assert customer.phone == "+15145550142"
    assert customer.email_marketing_consent is True
    assert customer.email_marketing_consent_at == datetime(2025, 3, 2, 22, 41, 12, tzinfo=UTC)
    # "not_subscribed": never said yes nor no, which is no answer at all (unknown)
    assert customer.sms_marketing_consent is None
    assert customer.tags == ["newsletter", "repeat buyer"]
    assert customer.locale == "en-US"
    # Money stays decimal text in the stored JSON, never a float.
    assert row.payload["order"]["total"] == "152.43"


def test_amounts_come_from_shop_money_when_present(send, store):
    order = fixture_json(ORDER)
    order["currency"] = "CAD"  # presentment differs; *_set.shop_money is the shop's truth
    order["total_price"] = "205.00"
    order["line_items"][0]["price"] = "160.00"
    send.shopify("orders/paid", order)

    [row] = inbox_rows(store)
    event = _event(row)
    assert event.type is EventType.ORDER_PAID
    assert (event.order.currency, event.order.total) == ("USD", Decimal("152.43"))
    assert event.order.lines[0].unit_price == Decimal("119.00")


def test_local_phone_numbers_become_e164_using_the_address_country(send, store):
    order = fixture_json(ORDER)
    order["customer"]["phone"] = None
    order["phone"] = "(514) 555-0199"
    send.shopify("orders/create", order)
    assert _event(inbox_rows(store)[0]).order.customer.phone == "+15145550199"


def test_the_customers_time_zone_comes_from_where_the_parcel_goes(send, store):
    quebec = fixture_json(ORDER)  # shipping and billing in Montréal, QC
    moved = fixture_json(ORDER)
    moved["id"] = 820982911946154509
    moved["shipping_address"].update(country_code="US", province_code="CA")
    overseas = fixture_json(ORDER)
    overseas["id"] = 820982911946154510
    overseas["shipping_address"].update(country_code="US", province_code="AE")  # armed forces
    overseas["billing_address"].update(country_code="DE", province_code=None)

    for order in (quebec, moved, overseas):
        assert send.shopify("orders/create", order).status_code == 202
    zones = [_event(row).order.customer.time_zone for row in inbox_rows(store)]

    assert zones == ["America/Toronto", "America/Los_Angeles", "Europe/Berlin"]


def test_a_customer_update_without_an_address_leaves_the_zone_unsaid(send, store):
    customer = fixture_json("shopify/customers_update.json")
    customer["default_address"] = None

    assert send.shopify("customers/update", customer).status_code == 202

    [row] = inbox_rows(store)
    assert "time_zone" not in row.payload["customer"]  # the stored zone stays as it is


@pytest.mark.parametrize(
    ("topic", "event_type", "as_shopify_sends_it"),
    [
        ("orders/paid", "order.paid", {}),
        ("orders/updated", "order.updated", {}),
        ("orders/fulfilled", "order.fulfilled", {"fulfillment_status": "fulfilled"}),
        (
            "orders/partially_fulfilled",
            "order.partially_fulfilled",
            {"fulfillment_status": "partial"},
        ),
        ("orders/cancelled", "order.cancelled", {"cancelled_at": "2026-11-20T09:30:00-05:00"}),
    ],
)
def test_order_topics_map_to_canonical_events(send, store, topic, event_type, as_shopify_sends_it):
    body = {**fixture_json(ORDER), **as_shopify_sends_it}
    assert send.shopify(topic, body).status_code == 202
    assert [r.event_type for r in inbox_rows(store)] == [event_type]


def test_refund_carries_the_amount_actually_paid_back(send, store):
    response = send.shopify("refunds/create", fixture_bytes("shopify/refunds_create.json"))
    assert response.status_code == 202
    [row] = inbox_rows(store)
    event = _event(row)
    assert event.type is EventType.ORDER_REFUNDED
    # Only the successful refund transaction counts, not the declined attempt.
    assert (event.refund.external_id, event.refund.amount, event.refund.currency) == (
        "929361465",
        Decimal("27.14"),
        "USD",
    )
    assert (event.order.external_id, event.order.currency) == ("5923077374125", "USD")
    assert event.order.updated_at is None  # never overwrites the stored order's state
    assert row.occurred_at == datetime(2026, 11, 24, 19, 2, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        ("delivered", "order.delivered"),
        ("out_for_delivery", "shipment.updated"),
        ("attempted_delivery", "shipment.updated"),
        ("failure", "shipment.updated"),
    ],
)
def test_fulfillment_events_report_delivery_or_shipment_progress(send, store, status, event_type):
    body = fixture_json("shopify/fulfillment_events_create.json")
    body["status"] = status
    assert send.shopify("fulfillment_events/create", body).status_code == 202
    [row] = inbox_rows(store)
    event = _event(row)
    assert (row.event_type, event.shipment.status) == (event_type, status)
    assert event.order.external_id == "5923077374125"
    assert row.occurred_at == datetime(2026, 11, 23, 20, 42, tzinfo=UTC)


def test_return_request_and_customer_update(send, store):
    send.shopify("returns/request", fixture_bytes("shopify/returns_request.json"))
    send.shopify("customers/update", fixture_bytes("shopify/customers_update.json"))
    returned, updated = (_event(r) for r in inbox_rows(store))
    assert (returned.type, returned.order.external_id) == (
        EventType.RETURN_REQUESTED,
        "5923077374125",
    )
    assert updated.type is EventType.CUSTOMER_UPDATED
    assert updated.customer.email_marketing_consent is False  # unsubscribed
    assert updated.customer.sms_marketing_consent is True
    assert updated.customer.sms_marketing_consent_at == datetime(
        2026, 11, 25, 13, 3, 51, tzinfo=UTC
    )
    assert updated.customer.tags == ["newsletter", "repeat buyer", "vip"]


def test_unhandled_topic_is_recorded_as_ignored_without_its_body(send, store):
    response = send.shopify("inventory_levels/update", {"inventory_item_id": 1, "available": 3})
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    [row] = inbox_rows(store)
    assert (row.status, row.event_type, row.topic) == (
        ClaimStatus.IGNORED,
        "ignored",
        "inventory_levels/update",
    )
    assert row.payload == {"topic": "inventory_levels/update"}


@pytest.mark.parametrize(
    ("topic", "body", "status"),
    [
        ("orders/create", fixture_bytes(ORDER), "accepted"),
        ("inventory_levels/update", {"inventory_item_id": 1, "available": 3}, "ignored"),
    ],
)
def test_the_stored_answer_is_the_json_a_json_response_sends(send, store, topic, body, status):
    response = send.shopify(topic, body)
    [row] = inbox_rows(store)
    expected = JSONResponse({"status": status, "event_id": row.id}, status_code=202)
    assert response.status_code == 202
    assert response.content == expected.body
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(expected.body))


def test_duplicate_delivery_changes_nothing(send, store):
    body = fixture_bytes(ORDER)
    first = send.shopify("orders/paid", body, event_id="ev-7", webhook_id="wh-1")
    again = send.shopify("orders/paid", body, event_id="ev-7", webhook_id="wh-2")
    assert first.status_code == 202
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    # Same merchant action, another topic: a different event.
    assert send.shopify("orders/updated", body, event_id="ev-7").status_code == 202
    assert [r.topic for r in inbox_rows(store)] == ["orders/paid", "orders/updated"]


def test_webhook_id_is_the_key_when_there_is_no_event_id(send, store):
    body = fixture_bytes(ORDER)
    headers = {"X-Shopify-Event-Id": ""}
    assert send.shopify("orders/paid", body, webhook_id="wh-9", headers=headers).status_code == 202
    again = send.shopify("orders/paid", body, webhook_id="wh-9", headers=headers)
    assert again.json() == {"status": "duplicate"}
    assert inbox_rows(store)[0].dedupe_key == f"shopify:{SHOP}:orders/paid:wh-9"


def test_out_of_order_updates_keep_each_orders_own_updated_at(send, store):
    newer = fixture_json(ORDER)
    newer["updated_at"] = "2026-11-20T11:00:00-05:00"
    newer["financial_status"] = "refunded"
    older = fixture_json(ORDER)
    older["updated_at"] = "2026-11-20T10:00:00-05:00"
    older["financial_status"] = "paid"
    send.shopify("orders/updated", newer)
    send.shopify("orders/updated", older)  # a late retry of an older state

    rows = inbox_rows(store)
    assert len(rows) == 2
    by_state = {_event(r).order.financial_status: r for r in rows}
    assert by_state["refunded"].occurred_at > by_state["paid"].occurred_at
    assert _event(by_state["refunded"]).order.updated_at == datetime(2026, 11, 20, 16, tzinfo=UTC)
    # Arrival order is the reverse: processing must compare updated_at, not ids.
    assert by_state["paid"].id > by_state["refunded"].id


def test_each_shop_is_checked_with_its_own_secret(send, store):
    body = fixture_bytes(ORDER)
    ok = send.shopify("orders/create", body, shop=OTHER_SHOP, secret=OTHER_SHOP_SECRET)
    assert ok.status_code == 202
    wrong = send.shopify("orders/create", body, shop=OTHER_SHOP, secret=SHOPIFY_SECRET)
    assert wrong.status_code == 401
    assert [r.shop for r in inbox_rows(store)] == [OTHER_SHOP]


def test_unknown_shop_without_a_default_secret_is_refused(db_url, store):
    settings = intake_settings(db_url, shopify_webhook_secret=None)
    with TestClient(create_app(settings, session_factory=store)) as client:
        response = Sender(client).shopify("orders/create", fixture_bytes(ORDER))
    assert response.status_code == 401
    assert "no webhook secret" in response.json()["reason"]
    assert inbox_rows(store) == []


def test_unconfigured_intake_answers_503_so_shopify_retries(db_url, store):
    settings = intake_settings(db_url, shopify_webhook_secret=None, shopify_webhook_secrets={})
    with TestClient(create_app(settings, session_factory=store)) as client:
        response = Sender(client).shopify("orders/create", fixture_bytes(ORDER))
    assert response.status_code == 503
    assert "SHOPIFY_WEBHOOK_SECRET" in response.json()["reason"]


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ("tampered", 401, "X-Shopify-Hmac-Sha256 does not match"),
        ("wrong_secret", 401, "X-Shopify-Hmac-Sha256 does not match"),
        ("no_signature", 401, "missing X-Shopify-Hmac-Sha256"),
        ("no_topic", 400, "missing x-shopify-topic"),
        ("no_ids", 400, "missing x-shopify-webhook-id"),
        ("malformed", 400, "malformed JSON"),
        ("not_json", 415, "Content-Type must be application/json, not text/plain"),
        ("oversize", 413, "over the 1048576-byte limit"),
    ],
)
def test_bad_deliveries_are_refused_and_kept_for_ops(send, store, change, status, reason):
    body = fixture_bytes(ORDER)
    kwargs = {}
    if change == "tampered":
        # Signed as sent by Shopify, then the total changed on the way.
        kwargs["headers"] = {"X-Shopify-Hmac-Sha256": base64_digest(body, SHOPIFY_SECRET)}
        body = body.replace(b'"total_price": "152.43"', b'"total_price": "1.43"')
    elif change == "wrong_secret":
        kwargs["secret"] = "shpss_guessed"
    elif change == "no_signature":
        kwargs["headers"] = {"X-Shopify-Hmac-Sha256": ""}
    elif change == "no_topic":
        kwargs["headers"] = {"X-Shopify-Topic": ""}
    elif change == "no_ids":
        kwargs["headers"] = {"X-Shopify-Event-Id": "", "X-Shopify-Webhook-Id": ""}
    elif change == "malformed":
        body = body[:-20]
    elif change == "not_json":
        kwargs["headers"] = {"Content-Type": "text/plain"}
    elif change == "oversize":
        order = fixture_json(ORDER)
        order["note"] = "x" * (1024 * 1024)
        body = json.dumps(order).encode()
    response = send.shopify("orders/create", body, **kwargs)

    assert response.status_code == status
    assert response.json()["status"] == "rejected"
    assert reason.lower() in response.json()["reason"].lower()
    assert inbox_rows(store) == []
    [kept] = rejected_rows(store)
    assert (kept.route, kept.status_code) == ("/webhooks/shopify", status)
    assert reason.lower() in kept.reason.lower()
    assert "x-shopify-hmac-sha256" not in kept.headers  # signatures are not kept
    assert kept.headers.get("x-shopify-shop-domain") == SHOP
    assert len(kept.body_excerpt) <= 2048


def test_wrong_types_are_422_naming_the_field_and_the_problem(send, store):
    order = fixture_json(ORDER)
    order["line_items"][1]["quantity"] = "two"
    order["line_items"][2]["price"] = True
    order["created_at"] = "2026-11-20T09:14:03"  # no offset
    del order["id"]
    response = send.shopify("orders/create", order)

    assert response.status_code == 422
    errors = {e["field"]: e["problem"] for e in response.json()["errors"]}
    assert "valid integer" in errors["line_items.1.quantity"]
    assert "decimal string" in errors["line_items.2.price"]
    assert "time zone offset" in errors["created_at"]
    assert "required" in errors["id"].lower()
    assert inbox_rows(store) == []
    assert "line_items.1.quantity" in rejected_rows(store)[0].reason


def test_canonical_rules_are_reported_with_their_path(send, store):
    order = fixture_json(ORDER)
    order["line_items"][0]["quantity"] = -1
    order["total_price_set"]["shop_money"]["currency_code"] = "dollars"
    response = send.shopify("orders/create", order)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"canonical event: order.lines.0.quantity", "canonical event: order.currency"} <= fields


def test_json_that_no_database_can_store_is_422(send, store):
    order = fixture_json(ORDER)
    order["line_items"][0]["title"] = "Trail\u0000Runner"
    response = send.shopify("orders/create", order)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "order.lines.0.title"
    body = fixture_bytes(ORDER).replace(b'"title": "Gift wrap"', b'"title": "Gift \\ud800 wrap"')
    assert send.shopify("orders/create", body).status_code == 422
    assert inbox_rows(store) == []


def test_body_must_be_a_json_object(send, store):
    response = send.shopify("orders/create", [1, 2, 3])
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "problem": "must be a JSON object"}]


def test_new_kinds_of_rejection_stop_being_recorded_at_the_cap(db_url, store):
    settings = intake_settings(db_url, rejected_webhook_cap=1)
    with TestClient(create_app(settings, session_factory=store)) as client:
        sender = Sender(client)
        answers = [
            sender.shopify("orders/create", b"{}", secret="guess").status_code for _ in range(6)
        ]
        answers += [
            sender.shopify("orders/create", b"{}", headers={"Content-Type": ""}).status_code
            for _ in range(6)
        ]
    assert answers == [401] * 6 + [415] * 6
    # The 415s are a new kind: no room for their row. The 401s still count in theirs.
    [kept] = rejected_rows(store)
    assert (kept.status_code, kept.count) == (401, 6)


def test_database_outage_answers_503_and_nothing_is_acknowledged(db_url, tmp_path):
    missing = make_engine(parse_database_url(f"sqlite:///{tmp_path}/empty.db"))  # no tables
    settings = intake_settings(db_url)
    with TestClient(create_app(settings, session_factory=session_factory(missing))) as client:
        response = Sender(client).shopify("orders/create", fixture_bytes(ORDER))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"


def test_logs_carry_no_customer_data_or_secrets(send, store, caplog):
    caplog.set_level(logging.DEBUG)
    order = fixture_json(ORDER)
    send.shopify("orders/create", order)
    order["line_items"][0]["price"] = "12,50"
    send.shopify("orders/create", order)  # 422
    send.shopify("orders/create", order, secret="guess")  # 401
    assert "webhooks" in caplog.text  # the rejections were logged...
    for private in ("ines.moreau", "Moreau", "514", "Sherbrooke", SHOPIFY_SECRET, "12,50"):
        assert private.lower() not in caplog.text.lower()  # ...without what they carried
