"""``CanonicalEvent.payload_json`` writes the bytes pydantic's serializer writes.

msgspec writes the stored payload (``postpurchase.events._payload_of``); pydantic's
``to_json(exclude_none=True, exclude_unset=True)`` is the reference: the same members, in the
same order, each value written the same way. Held to it over the events the platforms'
fixtures make and over generated events: every section, fields given or not, None or not,
texts with any character pydantic keeps, amounts, times in any offset, dates.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deliveries import FIXTURES, GENERIC_PAID
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from postpurchase.events import CanonicalEvent, EventType
from postpurchase.platforms import generic, shopify, woocommerce

RECEIVED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def _pydantic_json(event: CanonicalEvent) -> bytes:
    return event.__pydantic_serializer__.to_json(event, exclude_none=True, exclude_unset=True)


def _assert_same(event: CanonicalEvent) -> None:
    assert event.payload_json() == _pydantic_json(event)
    assert json.loads(event.payload_json()) == event.as_payload()


def _shopify_events() -> list[Any]:
    found = []
    for path in sorted((FIXTURES / "shopify").glob("*.json")) + sorted(
        (FIXTURES / "genuine" / "shopify").glob("*.json")
    ):
        data = json.loads(path.read_text())
        for topic in [*shopify.HANDLED_TOPICS]:
            try:
                event = shopify.normalise(topic, data, received_at=RECEIVED, shop="s.example")
            except Exception:  # noqa: BLE001 - a body of another topic
                continue
            if event is not None:
                found.append(pytest.param(event, id=f"{path.stem}-{topic}"))
    return found


@pytest.mark.parametrize("event", _shopify_events())
def test_shopify_fixtures_events_are_written_as_pydantic_writes_them(event):
    _assert_same(event)


def test_woocommerce_and_generic_events_are_written_as_pydantic_writes_them():
    paths = sorted((FIXTURES / "woocommerce").glob("*.json"))
    paths += sorted((FIXTURES / "genuine" / "woocommerce").glob("*.json"))
    events = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        for topic in ("order.created", "order.updated"):
            try:
                event = woocommerce.normalise(topic, data, received_at=RECEIVED)
            except Exception:  # noqa: BLE001 - not an order body
                continue
            if event is not None:
                events.append(event)
    events.append(generic.parse(GENERIC_PAID)[2])
    assert events
    for event in events:
        _assert_same(event)


_texts = st.text(
    st.characters(exclude_categories=["Cs"]) | st.sampled_from('\x00\x01\x1f\x7f\u2028"\\/<>&'),
    max_size=12,
)
_zones = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60)
) | st.sampled_from([UTC, timezone(timedelta(seconds=3661)), timezone(timedelta(0))])
_times = st.builds(
    lambda when, zone: when.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    _zones,
)
_amounts = st.decimals(
    allow_nan=False, allow_infinity=False, places=None, min_value=-(10**10), max_value=10**10
)
_maybe = lambda values: st.none() | values  # noqa: E731


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of ``fields``, each one given (possibly None) or left out."""
    return st.fixed_dictionaries(
        {}, optional={name: _maybe(value) for name, value in fields.items()}
    )


_customers = st.builds(
    lambda given, cid: {"external_id": cid, **given},
    _optional(
        email=st.sampled_from(["Mia@Example.org", "a.b@example.com"]),
        phone=st.text(max_size=32),
        first_name=_texts,
        last_name=_texts,
        locale=st.text(max_size=16),
        time_zone=st.text(max_size=64),
        email_marketing_consent=st.booleans(),
        email_marketing_consent_at=_times,
        sms_consent=st.booleans(),
        sms_marketing_consent_at=_times,
        tags=st.lists(_texts, max_size=3),
        updated_at=_times,
        birthday=st.dates(min_value=date(1900, 1, 1)),
    ),
    st.text(min_size=1, max_size=8),
)
_lines = st.builds(
    lambda given, title, quantity, price: {
        "external_id": "1",
        "title": title,
        "quantity": quantity,
        "unit_price": price,
        **given,
    },
    _optional(product_id=st.just("p1"), sku=_texts, vendor=_texts, image_url=_texts),
    _texts,
    st.integers(0, 2**31 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=10**9, places=2),
)
_orders = st.builds(
    lambda given, currency: {"external_id": "o-1", "currency": currency, **given},
    _optional(
        name=st.text(max_size=64),
        subtotal=_amounts,
        total=_amounts,
        total_tax=_amounts,
        financial_status=st.text(max_size=32),
        tracking_url=_texts,
        placed_at=_times,
        paid_at=_times,
        updated_at=_times,
        cancelled_at=_times,
        lines=st.lists(_lines, max_size=3),
        customer=_customers,
        refunds=st.lists(
            st.fixed_dictionaries(
                {"external_id": st.just("r1"), "amount": _amounts, "currency": st.just("EUR")},
                optional={"reason": _texts},
            ),
            max_size=2,
        ),
        discount_codes=st.lists(st.text(min_size=1, max_size=8), max_size=3),
        referral_code=st.text(max_size=64),
    ),
    st.sampled_from(["EUR", "USD", "XXX"]),
)
_events = st.builds(
    lambda kind, when, given: {"type": kind, "occurred_at": when, **given},
    st.sampled_from(list(EventType)),
    _times,
    _optional(
        order=_orders,
        customer=_customers,
        shipment=st.fixed_dictionaries({"status": _texts}, optional={"tracking_url": _texts}),
        review=_optional(rating=st.integers(1, 5), product_id=st.just("p1")),
        tier=st.fixed_dictionaries({"from_tier": _maybe(_texts), "to_tier": _texts}),
        product=st.fixed_dictionaries(
            {"external_id": st.just("p1")},
            optional={"title": _texts, "tags": st.lists(_texts, max_size=2), "updated_at": _times},
        ),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_events)
def test_generated_events_are_written_as_pydantic_writes_them(data):
    try:
        event = CanonicalEvent.model_validate(data)
    except ValidationError:
        assume(False)
    _assert_same(event)


def test_a_model_outside_the_canonical_event_is_refused():
    with pytest.raises(TypeError):
        CanonicalEvent.model_construct(
            type=EventType.ORDER_PAID, occurred_at=RECEIVED, order=object()
        ).payload_json()


def test_an_event_read_back_from_its_payload_is_written_the_same():
    for param in _shopify_events()[:3]:
        event = param.values[0]
        again = CanonicalEvent.model_validate_json(event.payload_json())
        assert again.payload_json() == event.payload_json()


def test_amount_forms_are_written_as_their_text():
    for text in ["0", "-0", "1E+2", "12.50", "0.0001", "100000000000"]:
        order = {"external_id": "1", "currency": "EUR", "total": Decimal(text)}
        try:
            event = CanonicalEvent.model_validate(
                {"type": "order.paid", "occurred_at": RECEIVED, "order": order}
            )
        except ValidationError:
            continue
        _assert_same(event)
