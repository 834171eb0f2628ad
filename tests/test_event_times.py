"""Canonical events' times keep the offset they were written with, in the standard library's zone.

pydantic reads a written offset as a zone of its own (``pydantic_core.TzInfo``); a canonical
event's time carries the ``datetime.timezone`` of that offset instead (``datetime.UTC`` for
none), one zone object per offset. In every other respect it must be the time pydantic read:
the same clock and offset, equal to it, ordered and hashed as it is against stored times (in
UTC), and written as the same JSON by pydantic (the inbox's payloads) and by msgspec (the
store's rows). Held to it over written forms and generated times, as JSON (the drainer's
stored payloads, with the stored context, and the generic route's) and as Python values (the
platform normalisers' input).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from deliveries import GENERIC_PAID, fixture_bytes
from genuine import genuine
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from postpurchase.events import STORED, AwareDatetime, CanonicalEvent
from postpurchase.platforms import generic, shopify, woocommerce
from postpurchase.webhooks.intake import parse_json

# pydantic's own reading of a time, with its own zone: the reference
PYDANTIC = TypeAdapter(datetime)
AWARE = TypeAdapter(AwareDatetime)

WRITTEN = [
    "2026-11-27T10:00:00Z",
    "2026-11-27T10:00:00+00:00",
    "2026-11-27T10:00:00-00:00",
    "2026-11-27T05:00:00-05:00",
    "2026-03-08T01:59:59.999999-05:00",
    "2026-11-27T15:30:00+05:30",
    "2026-11-28T00:00:00+14:00",
    "2026-11-27T06:30:00.5-03:30",
    "2026-11-27 11:00:00+01:00",
    "2026-11-27T10:00:00+0100",
    "1970-01-01T00:00:00-12:00",
]


def _event(occurred_at: Any) -> dict[str, Any]:
    return {
        "type": "order.updated",
        "occurred_at": occurred_at,
        "order": {"external_id": "5001", "currency": "USD", "updated_at": occurred_at},
    }


def _read(written: str, way: str) -> datetime:
    """``written`` as a canonical event's time, read the way intake or the drainer reads it."""
    if way == "python":
        event = CanonicalEvent.model_validate(_event(written))
    else:
        context = {STORED: True} if way == "stored json" else None
        event = CanonicalEvent.model_validate_json(json.dumps(_event(written)), context=context)
    assert event.order is not None and event.order.updated_at == event.occurred_at
    return event.occurred_at


@pytest.mark.parametrize("way", ["stored json", "json", "python"])
@pytest.mark.parametrize("written", WRITTEN)
def test_a_time_keeps_its_written_offset_in_a_standard_zone(written: str, way: str) -> None:
    value = _read(written, way)
    reference = PYDANTIC.validate_python(written)
    assert type(value.tzinfo) is timezone
    assert value.utcoffset() == reference.utcoffset()
    assert value.replace(tzinfo=None) == reference.replace(tzinfo=None)  # the clock as written
    assert value == reference
    if value.utcoffset() == timedelta(0):
        assert value.tzinfo is UTC


def test_times_of_one_offset_share_one_zone() -> None:
    # Two times of one zone object compare without asking it their offsets.
    first = _read("2026-11-27T05:00:00-05:00", "stored json")
    second = _read("2026-11-28T07:30:00-05:00", "python")
    assert first.tzinfo is second.tzinfo
    assert _read("2026-11-27T10:00:00+00:00", "json").tzinfo is UTC


RECEIVED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SHOPIFY_ORDER = fixture_bytes("shopify/orders_create.json")  # times written at -05:00


def _shopify_fast_path() -> CanonicalEvent:
    order = shopify.decoded_order("orders/create", SHOPIFY_ORDER)
    assert order is not None
    return shopify.normalise_order(
        "orders/create", order, received_at=RECEIVED, region="US", notes=[]
    )


def _shopify_full_path() -> CanonicalEvent | None:
    return shopify.normalise("orders/create", parse_json(SHOPIFY_ORDER), received_at=RECEIVED)


def _woocommerce() -> CanonicalEvent | None:  # times written in UTC without an offset
    return woocommerce.normalise("order.created", genuine("woocommerce/order_processing_docs.json"))


def _generic() -> CanonicalEvent:
    return generic.parse(json.loads(json.dumps(GENERIC_PAID)))[2]


@pytest.mark.parametrize(
    ("make", "offset"),
    [
        (_shopify_fast_path, timedelta(hours=-5)),
        (_shopify_full_path, timedelta(hours=-5)),
        (_woocommerce, timedelta(0)),
        (_generic, timedelta(hours=1)),
    ],
)
def test_every_normaliser_gives_times_in_standard_zones(make: Any, offset: timedelta) -> None:
    event = make()
    assert event is not None
    times = event.times()
    assert len(times) >= 2
    for path, value in times:
        assert type(value.tzinfo) is timezone, path
        assert value.utcoffset() == offset, path
    # and as the drainer reads the event back from the inbox
    stored = CanonicalEvent.model_validate_json(event.payload_json(), context={STORED: True})
    assert stored.times() == times
    assert [type(v.tzinfo) for _, v in stored.times()] == [timezone] * len(times)


@pytest.mark.parametrize(
    "given_zone", [UTC, timezone(timedelta(hours=-5)), ZoneInfo("America/New_York")]
)
def test_a_time_given_with_a_zone_keeps_it(given_zone: Any) -> None:
    # A zone a Python caller chose (with its rules for daylight saving time) is not replaced.
    moment = datetime(2026, 11, 27, 10, 0, tzinfo=given_zone)
    event = CanonicalEvent.model_validate(_event(moment))
    assert event.occurred_at.tzinfo is given_zone
    assert event.occurred_at == moment


@pytest.mark.parametrize("way", ["stored json", "json", "python"])
def test_a_time_without_an_offset_is_still_refused(way: str) -> None:
    with pytest.raises(ValidationError, match="must include a time zone offset"):
        _read("2026-11-27T10:00:00", way)


# Instants in the years the platforms' times are checked to (1970 to 9000), with offsets of
# whole minutes under a day, as pydantic reads them.
_INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(8999, 12, 30), timezones=st.just(UTC)
)
_OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_NEAR = st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(minutes=1)])


@given(instant=_INSTANTS, zone=_OFFSETS, near=_NEAR, later=st.booleans())
def test_times_compare_with_stored_times_and_encode_as_pydantic_read_them(
    instant: datetime, zone: timezone, near: timedelta, later: bool
) -> None:
    written = json.dumps(instant.astimezone(zone).isoformat())
    value = AWARE.validate_json(written)
    reference = PYDANTIC.validate_json(written)
    stored = reference.astimezone(UTC) + (near if later else -near)  # as the store reads one
    assert type(value.tzinfo) is timezone
    assert (value.utcoffset(), value.replace(tzinfo=None)) == (
        reference.utcoffset(),
        reference.replace(tzinfo=None),
    )
    assert value == reference and hash(value) == hash(reference)
    assert (value < stored, value == stored, value > stored) == (
        reference < stored,
        reference == stored,
        reference > stored,
    )
    assert (value - stored, stored - value) == (reference - stored, stored - reference)
    assert value.astimezone(UTC) == reference.astimezone(UTC)
    assert AWARE.dump_json(value) == PYDANTIC.dump_json(reference)
    assert msgspec.json.encode(value) == msgspec.json.encode(reference)
