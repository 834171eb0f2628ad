"""Intake's fast path for Shopify orders gives what the full path gives, or steps aside.

``shopify.decoded_order`` decodes an order straight from the bytes; when it returns an order,
the full path (``parse_json``, then ``normalise``) must accept the body too and make the same
canonical event, with the same notes and the same test-order verdict. Bodies are drawn from
the genuine order fixture with fields pushed to odd values: other types, padded or exotic
decimals and ids, times in every form pydantic reads, bodies that are not UTF-8.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from deliveries import fixture_bytes, fixture_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postpurchase.events import CanonicalEvent
from postpurchase.platforms import shopify
from postpurchase.platforms.fields import InvalidPayload
from postpurchase.platforms.shopify_bodies import is_test_order
from postpurchase.webhooks.intake import parse_json
from postpurchase.webhooks.rejections import Rejection

ORDER = "shopify/orders_create.json"
TOPICS = [
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "orders/cancelled",
]
RECEIVED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def _full_path(topic: str, body: bytes) -> tuple[Any, ...]:
    """(test order?, event, notes) as the full path sees the body, or the problem it names."""
    try:
        data = parse_json(body)
    except Rejection as exc:
        return ("rejected", exc.status_code)
    notes: list[str] = []
    try:
        event = shopify.normalise(topic, data, received_at=RECEIVED, notes=notes)
    except InvalidPayload as exc:
        return ("invalid", exc.problems)
    return (is_test_order(topic, data), event, notes)


def _same_as_full_path(topic: str, body: bytes) -> bool:
    """Check the fast path against the full path; whether it took the body."""
    order = shopify.decoded_order(topic, body)
    if order is None:
        return False
    full = _full_path(topic, body)
    notes: list[str] = []
    try:
        event = shopify.normalise_order(
            topic, order, received_at=RECEIVED, region=shopify.DEFAULT_REGION, notes=notes
        )
    except InvalidPayload as exc:  # a canonical rule: both paths name the same problems
        assert full == ("invalid", exc.problems)
        return True
    assert full[0] in (True, False), f"the full path refuses what the fast path took: {full}"
    test_order, full_event, full_notes = full
    assert (order.test is True) == test_order
    # checked without pydantic (event_structs), or validated by it when not plainly valid
    if isinstance(event, CanonicalEvent):
        assert event == full_event
    assert (event.type, event.occurred_at) == (full_event.type, full_event.occurred_at)
    assert event.subject_id() == full_event.subject_id()
    assert event.payload_json() == full_event.payload_json()
    assert event.occurred_at.utcoffset() == full_event.occurred_at.utcoffset()
    assert event.times() == full_event.times()
    assert notes == full_notes
    return True


def _body(order: Any) -> bytes:
    return json.dumps(order, ensure_ascii=False).encode()


def test_the_genuine_order_takes_the_fast_path_to_the_same_event():
    assert _same_as_full_path("orders/create", fixture_bytes(ORDER))


def test_a_captured_delivery_with_characters_beyond_ascii_takes_the_fast_path_as_sent():
    # Shopify writes such characters as they are (here the card's "•••• •••• •••• 4242"):
    # msgspec decodes the bytes themselves, once they are known to be UTF-8.
    body = fixture_bytes("genuine/shopify/dev_store_aud_orders_create.json")
    assert not body.isascii()
    assert _same_as_full_path("orders/create", body)


def test_times_decode_to_plain_datetimes_of_the_written_instant_and_offset():
    order = shopify.decoded_order("orders/create", fixture_bytes(ORDER))
    assert order is not None and order.customer is not None
    written = fixture_json(ORDER)
    decoded = {
        "created_at": (order.created_at, written["created_at"]),
        "updated_at": (order.updated_at, written["updated_at"]),
        "customer.updated_at": (order.customer.updated_at, written["customer"]["updated_at"]),
    }
    for path, (value, text) in decoded.items():
        assert type(value) is datetime, path  # not an instance of the hook's mark
        assert value == datetime.fromisoformat(text), path
        assert value.utcoffset() == datetime.fromisoformat(text).utcoffset(), path


@pytest.mark.parametrize(
    ("edit", "fast"),
    [
        (lambda o: o.update(test=True), True),
        (lambda o: o.update(id=" 42 "), True),
        (lambda o: o.update(id="x" * 65), False),
        (lambda o: o.update(total_price=" 12.50 "), True),
        (lambda o: o.update(total_price="NaN"), False),
        (lambda o: o.update(total_price="1_000"), True),
        (lambda o: o["line_items"][0].update(price="Infinity"), False),
        (lambda o: o["total_tax_set"]["shop_money"].update(amount="NaN"), False),
        (lambda o: o["line_items"][0]["price_set"]["shop_money"].update(amount="-Inf"), False),
        (lambda o: o["shipping_lines"][0].update(price="sNaN"), False),
        (lambda o: o["shipping_lines"][0]["price_set"]["shop_money"].update(amount="NaN"), False),
        (lambda o: o["line_items"][0].update(quantity="2"), False),  # pydantic coerces it
        (lambda o: o.update(created_at="2026-11-20T09:14:03.1234567-05:00"), False),
        (lambda o: o.update(created_at="2026-11-20 09:14:03-05:00"), False),
        (lambda o: o.update(created_at="2026-11-20T09:14:03.5Z"), True),
        (lambda o: o.update(created_at="2026-11-20T09:14:03"), False),  # no offset: 422
        (lambda o: o.update(created_at="1969-12-31T23:59:59Z"), False),  # out of range: 422
        (lambda o: o.pop("line_items"), False),
        (lambda o: o.update(cancelled_at=None), True),
        (lambda o: o.update(customer=None), True),
        (lambda o: o["customer"].update(id=7), True),
        (lambda o: o.update(id=2**63 - 1), True),
        (lambda o: o.update(id=-(2**63)), True),
        (lambda o: o.update(id=2**63), False),  # past 64 bits: the full path reads it
        (lambda o: o["line_items"][1].update(product_id=10**30), False),
        (lambda o: o["line_items"][2].update(variant_id=" 42 "), True),
        (lambda o: o["line_items"][0].update(product_id=True), False),
        (lambda o: o["line_items"][0].update(sku=" "), True),
        (lambda o: o.update(email="not an address"), True),
        (lambda o: o["line_items"][0].update(quantity=-1), True),  # canonical rule: 422
    ],
)
def test_edges_take_the_fast_path_only_when_they_come_out_the_same(edit, fast):
    order = fixture_json(ORDER)
    edit(order)
    assert _same_as_full_path("orders/create", _body(order)) is fast


@pytest.mark.parametrize(
    "body",
    [
        fixture_bytes(ORDER).replace(b'"note": ', b'"note": "\xff\xfe", "n2": ', 1),
        fixture_bytes(ORDER).replace(b'"note": ', b'"note": "\xed\xa0\x80", "n2": ', 1),
        fixture_bytes(ORDER).replace(b'"note": ', b'"note": "\\ud800", "n2": ', 1),
        fixture_bytes(ORDER).replace(b'"note": ', b'"note": NaN, "n2": ', 1),
        b"\xef\xbb\xbf" + fixture_bytes(ORDER),
        fixture_json(ORDER).__repr__().encode(),
    ],
)
def test_bodies_the_full_path_reads_its_own_way_are_left_to_it(body):
    assert shopify.decoded_order("orders/create", body) is None


def test_the_last_of_repeated_keys_counts_as_in_the_full_path():
    body = fixture_bytes(ORDER).replace(
        b'"currency": "USD"', b'"currency": "EUR", "currency": "USD"'
    )
    assert _same_as_full_path("orders/create", body)


def test_topics_whose_facts_the_order_denies_are_left_to_the_full_path():
    body = fixture_bytes(ORDER)  # not cancelled, not fulfilled
    assert shopify.decoded_order("orders/cancelled", body) is None
    assert shopify.decoded_order("orders/fulfilled", body) is None
    assert shopify.decoded_order("customers/update", body) is None


_text = st.text(max_size=12) | st.sampled_from(["", " ", " x ", "\u00a0x", "x\x1f", "\u3000"])
_decimals = st.sampled_from(
    ["12.50", " 12.50 ", "1e3", "-0", "+1.5", ".5", "1_0", "12,50", "NaN", "sNaN", "-Inf", "0x1"]
)
_times = st.sampled_from(
    [
        "2026-11-20T09:14:03-05:00",
        "2026-11-20T09:14:03Z",
        "2026-11-20T09:14:03.000001+14:00",
        "2026-11-20T09:14:03.9999995Z",
        "2026-11-20t09:14:03z",
        "2026-11-20T09:14Z",
        "2026-02-30T09:14:03Z",
        "9000-12-31T23:59:59-05:00",
        "2026-11-20T09:14:03+24:00",
        "2026-11-20T09:14:03-00:00",
        "1700000000",
    ]
)
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    _decimals,
    _times,
    st.just([]),
    st.just({}),
)
_PATHS = [
    ("id",),
    ("currency",),
    ("name",),
    ("email",),
    ("phone",),
    ("test",),
    ("created_at",),
    ("updated_at",),
    ("cancelled_at",),
    ("total_price",),
    ("subtotal_price",),
    ("total_tax",),
    ("financial_status",),
    ("fulfillment_status",),
    ("customer_locale",),
    ("total_price_set", "shop_money", "amount"),
    ("total_price_set", "shop_money", "currency_code"),
    ("line_items", 0, "id"),
    ("line_items", 1, "quantity"),
    ("line_items", 1, "price"),
    ("line_items", 2, "title"),
    ("line_items", 2, "product_id"),
    ("line_items", 0, "price_set", "shop_money", "amount"),
    ("customer", "id"),
    ("customer", "email"),
    ("customer", "phone"),
    ("customer", "tags"),
    ("customer", "updated_at"),
    ("customer", "email_marketing_consent", "state"),
    ("customer", "email_marketing_consent", "consent_updated_at"),
    ("shipping_address", "country_code"),
    ("shipping_address", "phone"),
    ("shipping_lines", 0, "price"),
    ("discount_codes",),
    ("unknown_field",),
]


def _set(order: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        order = order[step]
    order[path[-1]] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(TOPICS),
    st.lists(st.tuples(st.sampled_from(_PATHS), _values), min_size=1, max_size=3),
)
def test_odd_orders_come_out_the_same_on_both_paths(topic, edits):
    order = fixture_json(ORDER)
    for path, value in edits:
        _set(order, path, value)
    _same_as_full_path(topic, _body(order))
