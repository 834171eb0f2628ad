"""The structs processing reads (``postpurchase.stored_events``) hold what the models would.

Held to it three ways: field for field against the models (names, order, types, limits,
required or not); over the payloads the platforms' fixtures make and over generated JSON
(any text, padded or not, nulls, amounts of any form, times in any offset), where
``read_stored`` must give what ``STORED`` validation of the model gives, converted, or the same
refusal; and over the cases msgspec reads but pydantic reads otherwise, one by one.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import annotated_types
import msgspec
import msgspec.inspect as mi
import pytest
from deliveries import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import UNSET
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from test_event_payload_json import _events as generated_events
from test_event_payload_json import _shopify_events

from postpurchase import events, stored_events
from postpurchase.events import STORED, CanonicalEvent, EventType
from postpurchase.platforms import shopify
from postpurchase.processing.consents import consent_only
from postpurchase.stored_events import STRUCTS, StoredEvent, event_of, read_stored

RECEIVED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def _pydantic_shape(annotation: Any, metadata: list[Any]) -> tuple[Any, ...]:
    """(kind, nullable, limits) of a model's field, as ``_struct_shape`` gives a struct's."""
    nullable = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable, annotation = True, args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *more = typing.get_args(annotation)
        metadata = [*metadata, *more]
    limits = {}
    for item in [*metadata, *(m for i in metadata if isinstance(i, FieldInfo) for m in i.metadata)]:
        for name in ("min_length", "max_length", "ge", "le"):
            if isinstance(getattr(item, name, None), int):
                limits[name] = getattr(item, name)
        if isinstance(item, annotated_types.Interval):
            limits.update({k: v for k, v in (("ge", item.ge), ("le", item.le)) if v is not None})
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return ("list", _pydantic_shape(item, [])), nullable, limits
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return STRUCTS[annotation.__name__], nullable, limits
    return annotation, nullable, limits


def _struct_shape(kind: Any) -> tuple[Any, ...]:
    nullable = False
    if isinstance(kind, mi.UnionType):
        nullable = any(isinstance(k, mi.NoneType) for k in kind.types)
        (kind,) = [k for k in kind.types if not isinstance(k, mi.NoneType)]
    limits = {
        name: getattr(kind, name)
        for name in ("min_length", "max_length", "ge", "le")
        if getattr(kind, name, None) is not None
    }
    if isinstance(kind, mi.ListType):
        return ("list", _struct_shape(kind.item_type)), nullable, limits
    plain = {
        mi.StrType: str,
        mi.IntType: int,
        mi.BoolType: bool,
        mi.DecimalType: Decimal,
        mi.DateTimeType: datetime,
        mi.DateType: date,
    }
    if isinstance(kind, mi.StructType):
        return kind.cls, nullable, limits
    if isinstance(kind, mi.EnumType):
        return kind.cls, nullable, limits
    return plain[type(kind)], nullable, limits


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_each_struct_mirrors_its_model_field_for_field(name):
    model, struct = getattr(events, name), STRUCTS[name]
    fields = mi.type_info(struct).fields
    assert [f.name for f in fields] == list(model.model_fields)
    for field in fields:
        info = model.model_fields[field.name]
        assert field.required == info.is_required(), field.name
        expected = _pydantic_shape(info.annotation, info.metadata)
        assert _struct_shape(field.type) == expected, field.name


def _reasons(exc: ValidationError) -> list[tuple[Any, ...]]:
    return [(e["type"], e["loc"], e["msg"], e["input"]) for e in exc.errors()]


def _pydantic_reading(payload: bytes) -> Any:
    """What the drain read before: the model, ``STORED``, converted; or the refusal's errors."""
    try:
        model = CanonicalEvent.model_validate_json(payload, context={STORED: True})
    except ValidationError as exc:
        return _reasons(exc)
    return event_of(model)


def _reading(payload: bytes) -> Any:
    try:
        return read_stored(payload)
    except ValidationError as exc:
        return _reasons(exc)


def _assert_read_alike(payload: bytes) -> Any:
    ours, theirs = _reading(payload), _pydantic_reading(payload)
    if isinstance(theirs, list):
        assert ours == theirs
        return None
    # written out: the same values in the same form (an amount's places, a time's offset)
    assert msgspec.json.encode(ours) == msgspec.json.encode(theirs)
    assert ours == theirs
    return ours


@pytest.mark.parametrize("event", _shopify_events())
def test_the_payloads_of_the_shopify_fixtures_are_read_as_pydantic_reads_them(event):
    payload = event.payload_json()
    assert _assert_read_alike(payload) is not None
    # and as stored on SQLite (json.dumps) and PostgreSQL (jsonb's text): spaces between
    assert _assert_read_alike(json.dumps(json.loads(payload)).encode()) is not None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_events)
def test_generated_json_is_read_as_pydantic_reads_it(data):
    _assert_read_alike(msgspec.json.encode(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_events, st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\x1c"]))
def test_generated_json_with_padded_text_is_read_as_pydantic_reads_it(data, space):
    def padded(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: padded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [padded(v) for v in value]
        return f"{space}{value}{space}" if isinstance(value, str) and value[:1] != "2" else value

    _assert_read_alike(msgspec.json.encode(padded(data)))


def _genuine_order() -> dict[str, Any]:
    data = json.loads((FIXTURES / "shopify" / "orders_create.json").read_text())
    event = shopify.normalise("orders/paid", data, received_at=RECEIVED, shop="s.example")
    assert event is not None
    return event.as_payload()


def _with(change: Any) -> bytes:
    payload = _genuine_order()
    change(payload)
    return json.dumps(payload).encode()


def test_the_genuine_order_is_read_by_msgspec_alone():
    event = read_stored(_with(lambda p: None))
    assert event.order is not None and event.order.customer is not None
    assert event.order.customer.email == event.order.customer.email.lower()
    assert isinstance(event.order.lines[0].unit_price, Decimal)
    assert type(event.occurred_at.tzinfo) is type(UTC)  # the standard library's zone


def test_a_compact_payload_has_its_texts_told_from_its_bytes(monkeypatch):
    """As intake writes it (and the inbox keeps it), the genuine order's texts need no walk
    through the struct; written with spaces between tokens, or with a padded text, they do."""
    walked = []
    walk = stored_events._texts_stripped
    monkeypatch.setattr(
        stored_events, "_texts_stripped", lambda event: walked.append(event) or walk(event)
    )
    compact = CanonicalEvent.model_validate(_genuine_order()).payload_json()
    assert read_stored(compact) == read_stored(_with(lambda p: None))  # the same event
    assert len(walked) == 1  # the spaced one only
    padded = compact.replace(b'"Trail Runner GTX"', b'" Trail Runner GTX"')
    assert padded != compact
    event = read_stored(padded)
    assert event.order is not None and event.order.lines[0].title == "Trail Runner GTX"
    assert len(walked) == 2


@pytest.mark.parametrize(
    ("change", "check"),
    [
        # msgspec rounds a fraction beyond microseconds; pydantic truncates it
        (
            lambda p: p.update(occurred_at="2026-11-20T09:14:03.9999999-05:00"),
            lambda e: e.occurred_at.second == 3 and e.occurred_at.microsecond == 999999,
        ),
        # Decimal's own forms, which both read alike
        (lambda p: p["order"].update(total=" 152.43"), lambda e: str(e.order.total) == "152.43"),
        (lambda p: p["order"].update(total="1_52.43"), lambda e: str(e.order.total) == "152.43"),
        # text pydantic strips, an address it lower-cases, one beyond ASCII
        (
            lambda p: p["order"]["lines"][0].update(title=" Trail Runner GTX\n"),
            lambda e: e.order.lines[0].title == "Trail Runner GTX",
        ),
        (
            lambda p: p["order"]["customer"].update(email="Ines.Moreau@Example.COM"),
            lambda e: e.order.customer.email == "ines.moreau@example.com",
        ),
        (
            lambda p: p["order"]["customer"].update(email="inès@exemple.fr"),
            lambda e: e.order.customer.email == "inès@exemple.fr",
        ),
        (
            lambda p: p["order"].update(discount_codes=["\u00a0WELCOME10"]),
            lambda e: e.order.discount_codes == ["WELCOME10"],
        ),
        # an amount of more places than cents, within the limits
        (lambda p: p["order"].update(total="152.4300"), lambda e: str(e.order.total) == "152.4300"),
        (lambda p: p["order"].update(total="-0.00"), lambda e: e.order.total.is_signed()),
    ],
)
def test_what_msgspec_reads_otherwise_is_read_as_pydantic_reads_it(change, check):
    event = _assert_read_alike(_with(change))
    assert check(event)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["order"].update(total="NaN"),
        lambda p: p["order"].update(total="Infinity"),
        lambda p: p["order"].update(total="1.23456"),
        lambda p: p["order"].update(total="123456789012.5"),
        lambda p: p["order"]["lines"][0].update(unit_price="-1.00"),
        lambda p: p["order"]["customer"].update(email="not an address"),
        lambda p: p["order"].update(currency="usd"),
        lambda p: p["order"].update(external_id=" "),
        lambda p: p.update(occurred_at="2026-11-20T09:14:03"),
        lambda p: p["order"].update(unknown="field"),
    ],
)
def test_what_pydantic_refuses_is_refused_with_its_reason(change):
    assert _assert_read_alike(_with(change)) is None


@pytest.mark.parametrize("payload", [b"{", b"[]", b'{"type": "order.paid"', b""])
def test_what_is_not_json_or_not_an_object_is_refused_with_its_reason(payload):
    assert _assert_read_alike(payload) is None


def test_a_field_given_as_null_is_given():
    # A stored payload leaves nulls out; one that does not is read as the model reads it: a
    # snapshot that names its email (as null) says more than consent.
    def null_email(p: dict[str, Any]) -> None:
        p["order"]["customer"] = {"external_id": "7", "email": None, "sms_consent": True}

    event = _assert_read_alike(_with(null_email))
    assert event.order.customer.email is None
    assert not consent_only(event.order.customer)
    bare = read_stored(_with(lambda p: p["order"].update(customer={"external_id": "7"})))
    assert bare.order.customer.email is UNSET
    assert consent_only(bare.order.customer)


def test_a_tier_change_built_in_sql_is_read_as_pydantic_reads_it():
    # postpurchase.loyalty.tier_events: nulls stripped, tags given as [], no consent
    payload = {
        "type": EventType.TIER_CHANGED.value,
        "occurred_at": "2026-11-20T15:00:00.123456Z",
        "customer": {"external_id": "7061234567853", "email": "ines@example.com", "tags": []},
        "tier": {"from_tier": "silver", "to_tier": "gold"},
    }
    event = _assert_read_alike(json.dumps(payload).encode())
    assert isinstance(event, StoredEvent) and not consent_only(event.customer)
