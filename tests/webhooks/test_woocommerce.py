"""The WooCommerce route: order webhooks signed as WooCommerce signs them, and its ping."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from deliveries import fixture_json, inbox_rows, rejected_rows

from postpurchase.events import CanonicalEvent, EventType
from postpurchase.store.models import ClaimStatus

ORDER = "woocommerce/order_processing.json"


def _order(**changes):
    order = fixture_json(ORDER)
    order.update(changes)
    return order


def test_processing_order_is_a_paid_order(send, store):
    response = send.woocommerce("order.created", _order())
    assert response.status_code == 202
    [row] = inbox_rows(store)
    event = CanonicalEvent.model_validate(row.payload)
    assert (row.source, row.event_type, row.topic, row.shop) == (
        "woocommerce",
        "order.paid",
        "order.created",
        "https://shop.example.de/",
    )
    order = event.order
    assert (order.external_id, order.name, order.currency) == ("8127", "#8127", "EUR")
    assert (order.total, order.total_tax, order.total_shipping, order.subtotal) == (
        Decimal("53.40"),
        Decimal("8.59"),
        Decimal("4.90"),
        Decimal("39.91"),
    )
    assert order.updated_at == datetime(2026, 11, 21, 10, 3, 10, tzinfo=UTC)
    assert order.placed_at == datetime(2026, 11, 21, 10, 2, 44, tzinfo=UTC)
    lines = [(li.external_id, li.variant_id, li.quantity, li.unit_price) for li in order.lines]
    # The unit price comes from the decimal subtotal, not WooCommerce's float "price".
    assert lines == [("611", "317", 1, Decimal("27.73")), ("612", None, 2, Decimal("6.09"))]
    customer = order.customer
    assert customer.external_id == "guest:jonas.becker@example.de"
    assert customer.phone == "+492211234567"  # local German number, country from billing
    assert customer.email_marketing_consent is None  # WooCommerce says nothing about consent
    assert customer.time_zone == "Europe/Berlin"  # from the addresses: WooCommerce sends none


def test_the_shipping_state_gives_a_us_customer_their_zone(send, store):
    order = _order(id=8128)
    order["billing"].update(country="US", state="NY")
    order["shipping"].update(country="US", state="TX")

    assert send.woocommerce("order.created", order).status_code == 202

    [row] = inbox_rows(store)
    assert CanonicalEvent.model_validate(row.payload).order.customer.time_zone == "America/Chicago"


@pytest.mark.parametrize(
    ("topic", "status", "event_type"),
    [
        ("order.updated", "completed", "order.fulfilled"),
        ("order.updated", "cancelled", "order.cancelled"),
        ("order.created", "pending", "order.placed"),
        ("order.created", "on-hold", "order.placed"),
        ("order.updated", "on-hold", "order.updated"),
        ("order.updated", "failed", "order.updated"),
    ],
)
def test_status_transitions_map_to_canonical_events(send, store, topic, status, event_type):
    assert send.woocommerce(topic, _order(status=status)).status_code == 202
    assert [r.event_type for r in inbox_rows(store)] == [event_type]


def test_refunded_order_carries_its_refunds(send, store):
    order = _order(
        status="refunded",
        date_modified_gmt="2026-11-25T09:00:00",
        refunds=[
            {"id": 8200, "reason": "damaged", "total": "-12.18"},
            {"id": 8210, "total": "-41.22"},
        ],
    )
    assert send.woocommerce("order.updated", order).status_code == 202
    event = CanonicalEvent.model_validate(inbox_rows(store)[0].payload)
    assert event.type is EventType.ORDER_REFUNDED
    # Each refund on its own, positive: processing counts each id once, whatever came before.
    assert event.refund is None
    assert [(r.external_id, r.amount, r.currency, r.reason) for r in event.order.refunds] == [
        ("8200", Decimal("12.18"), "EUR", "damaged"),
        ("8210", Decimal("41.22"), "EUR", None),
    ]


def test_a_retry_is_a_duplicate_but_a_new_state_is_a_new_event(send, store):
    order = _order()
    assert send.woocommerce("order.updated", order).status_code == 202
    # WooCommerce gives every attempt a new delivery id: the key ignores it.
    retry = send.woocommerce("order.updated", order)
    assert (retry.status_code, retry.json()) == (200, {"status": "duplicate"})
    completed = _order(status="completed", date_modified_gmt="2026-11-23T16:20:00")
    assert send.woocommerce("order.updated", completed).status_code == 202
    assert [r.event_type for r in inbox_rows(store)] == ["order.paid", "order.fulfilled"]


def test_a_partial_refund_keeps_the_status_event_and_lists_the_refund(send, store):
    refunded = _order(
        status="completed",
        date_modified_gmt="2026-11-24T08:00:00",
        refunds=[{"id": 8200, "reason": "Cup arrived broken", "total": "-6.09"}],
    )
    assert send.woocommerce("order.updated", refunded).status_code == 202

    [row] = inbox_rows(store)
    event = CanonicalEvent.model_validate(row.payload)
    # Processing records refund 8200 as new and treats it as an order.refunded too.
    assert (row.event_type, event.refund) == ("order.fulfilled", None)
    assert [(r.external_id, r.amount, r.reason) for r in event.order.refunds] == [
        ("8200", Decimal("6.09"), "Cup arrived broken")
    ]


def test_a_refund_made_within_the_same_second_is_not_a_duplicate(send, store):
    # WooCommerce dates a refund by touching the order's modification time, to the second:
    # a refund added in the same second as the last update leaves time and status unchanged.
    order = _order(date_modified_gmt="2026-11-24T08:00:00")
    assert send.woocommerce("order.updated", order).status_code == 202
    order["refunds"] = [{"id": 8200, "reason": "", "total": "-6.09"}]
    assert send.woocommerce("order.updated", order).status_code == 202
    order["refunds"].insert(0, {"id": 8201, "reason": "", "total": "-4.90"})
    assert send.woocommerce("order.updated", order).status_code == 202
    retry = send.woocommerce("order.updated", order)
    assert (retry.status_code, retry.json()) == (200, {"status": "duplicate"})
    listed = [CanonicalEvent.model_validate(r.payload).order.refunds for r in inbox_rows(store)]
    assert [[r.external_id for r in refunds] for refunds in listed] == [
        [],
        ["8200"],
        ["8200", "8201"],  # oldest first, whatever order WooCommerce lists them in
    ]


def test_ping_on_webhook_creation_gets_200_and_stores_nothing(client, store):
    response = client.post(
        "/webhooks/woocommerce",
        content=b"webhook_id=14",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7)",
        },
    )
    assert (response.status_code, response.json()) == (200, {"status": "ping"})
    assert inbox_rows(store) == []
    assert rejected_rows(store) == []


def test_other_topics_are_recorded_as_ignored(send, store):
    response = send.woocommerce("order.deleted", {"id": 8127})
    assert (response.status_code, response.json()["status"]) == (202, "ignored")
    assert send.woocommerce("order.deleted", {"id": 8127}).json() == {"status": "duplicate"}
    [row] = inbox_rows(store)
    assert (row.status, row.topic) == (ClaimStatus.IGNORED, "order.deleted")


def test_bad_signature_and_invalid_orders_are_refused(send, store):
    assert send.woocommerce("order.created", _order(), secret="guess").status_code == 401
    response = send.woocommerce("order.created", _order(total=12.5, date_modified_gmt=None))
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"date_modified_gmt"}  # 12.5 parses as an exact decimal, not a float
    bad_money = send.woocommerce("order.created", _order(total="12,50"))
    assert bad_money.status_code == 422
    assert bad_money.json()["errors"][0]["field"] == "total"
    assert inbox_rows(store) == []
    # Two 422s of the same kind ("invalid content"): one row counting both, with both samples.
    kept = [(r.status_code, r.count, len(r.samples)) for r in rejected_rows(store)]
    assert kept == [(401, 1, 1), (422, 2, 2)]
