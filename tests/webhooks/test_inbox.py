"""The inbox's own contract, for any writer (webhooks, internal events)."""

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from deliveries import inbox_rows
from sqlalchemy import select

from postpurchase.events import CanonicalEvent
from postpurchase.inbox import (
    InboxEntry,
    add_many_to_inbox,
    add_many_with_async_driver,
    add_to_inbox,
    dedupe_key,
    unstorable_field,
)
from postpurchase.store.database import transaction
from postpurchase.store.models import ClaimStatus, InboxEvent

TIER = CanonicalEvent.model_validate(
    {
        "type": "tier.changed",
        "occurred_at": "2026-11-27T03:00:00Z",
        "customer": {"external_id": "7061234567853"},
        "tier": {"from_tier": "silver", "to_tier": "gold"},
    }
)


def test_a_second_insert_of_a_key_is_a_no_op(store):
    entry = InboxEntry.for_event(
        TIER, source="internal", dedupe_key="internal:tier:42", topic=None, shop=None
    )
    with transaction(store) as session:
        first = add_to_inbox(session, entry)
    with transaction(store) as session:
        again = add_to_inbox(session, entry)
    [row] = inbox_rows(store)
    assert (first, again) == (row.id, None)
    assert (row.event_type, row.subject_id, row.status) == (
        "tier.changed",
        "7061234567853",
        ClaimStatus.PENDING,
    )
    assert row.occurred_at == datetime(2026, 11, 27, 3, tzinfo=UTC)
    assert CanonicalEvent.model_validate(row.payload) == TIER


def test_long_keys_are_hashed_to_fit_and_stay_distinct():
    short = dedupe_key("woocommerce", "https://shop.example/", "14", "8127")
    assert short == "woocommerce:https://shop.example/:14:8127"
    long_a = dedupe_key("woocommerce", "https://" + "a" * 300, "14", "1")
    long_b = dedupe_key("woocommerce", "https://" + "a" * 300, "14", "2")
    assert long_a.startswith("woocommerce:sha256:") and len(long_a) <= 255
    assert long_a != long_b


def test_text_no_database_can_store_is_found_with_its_path():
    entry = InboxEntry.for_event(
        TIER, source="internal", dedupe_key="k", topic=None, shop="bad\x00shop"
    )
    assert unstorable_field(entry) == "shop"
    assert unstorable_field(entry, texts=False) is None


def test_times_are_stored_as_the_orm_stores_them(store):
    """Rows written in one statement read back, sort and compare like rows the ORM wrote."""
    paris = timezone(timedelta(hours=1))
    entries = [
        InboxEntry.for_event(
            TIER.model_copy(update={"occurred_at": datetime(2026, 11, 27, hour, 30, tzinfo=paris)}),
            source="internal",
            dedupe_key=f"internal:tier:{hour}",
            topic=None,
            shop=None,
        )
        for hour in (9, 11)
    ]
    with transaction(store) as session:
        add_many_to_inbox(session.connection(), entries)
    cutoff = datetime(2026, 11, 27, 9, tzinfo=UTC)  # 10:00 in Paris
    with store() as session:
        later = session.scalars(select(InboxEvent).where(InboxEvent.occurred_at > cutoff)).all()
    assert [row.occurred_at for row in later] == [datetime(2026, 11, 27, 10, 30, tzinfo=UTC)]


def test_the_stored_json_is_what_pydantic_writes_for_the_payload():
    # The inbox stores payload_json() as it is: the bytes model_dump_json gives (Decimal as
    # text, the time's own offset, non-ASCII unescaped, unset and null fields left out).
    event = CanonicalEvent.model_validate(
        {
            "type": "order.placed",
            "occurred_at": "2026-11-27T03:00:00.250000-05:00",
            "order": {
                "external_id": "1001",
                "currency": "EUR",
                "total": "12.50",
                "placed_at": "2026-11-27T08:00:00Z",
                "lines": [{"external_id": "1", "title": "Crème", "quantity": 2, "unit_price": 5}],
                "customer": {"external_id": "7", "first_name": "Inès", "phone": None},
            },
        }
    )
    stored = event.payload_json()
    assert stored == event.model_dump_json(exclude_none=True, exclude_unset=True).encode()
    assert b"Cr\xc3\xa8me" in stored and b'"phone"' not in stored and b"subtotal" not in stored
    assert json.loads(stored) == event.as_payload()


def _stored_entries() -> list[InboxEntry]:
    tier = InboxEntry.for_event(
        TIER.model_copy(update={"occurred_at": datetime(2026, 11, 27, 3, 0, 0, 250000, UTC)}),
        source="internal",
        dedupe_key="k:tier",
        topic=None,
        shop=None,
    )
    ignored = InboxEntry.ignored(
        source="shopify",
        dedupe_key="k:ignored",
        topic="carts/update",
        shop="inès-shop.myshopify.com",
        received_at=datetime(2026, 11, 27, 4, tzinfo=UTC),
        reason="test order",
    )
    return [
        tier,
        ignored,
        InboxEntry.for_event(TIER, source="x", dedupe_key="k:tier", topic=None, shop=None),
    ]


def _check_stored(store, ids: list[int | None]) -> None:
    rows = sorted(inbox_rows(store), key=lambda row: row.id)
    assert ids == [rows[0].id, rows[1].id, None]  # the second "k:tier" is the duplicate
    columns = [
        (r.source, r.dedupe_key, r.event_type, r.topic, r.shop, r.subject_id, r.occurred_at)
        for r in rows
    ]
    assert columns == [
        ("internal", "k:tier", "tier.changed", None, None, "7061234567853",
         datetime(2026, 11, 27, 3, 0, 0, 250000, UTC)),
        ("shopify", "k:ignored", "ignored", "carts/update", "inès-shop.myshopify.com", None,
         datetime(2026, 11, 27, 4, tzinfo=UTC)),
    ]  # fmt: skip
    assert [r.status for r in rows] == [ClaimStatus.PENDING, ClaimStatus.IGNORED]
    assert [r.attempts for r in rows] == [0, 0]
    assert [r.payload for r in rows] == [json.loads(e.payload_json) for e in _stored_entries()[:2]]


def test_each_value_of_a_batch_is_stored_in_its_column(store):
    # The rows travel as JSON arrays read by position: a value in the wrong place, or a
    # JSON null read as the text "null", would show here.
    with transaction(store) as session:
        ids = add_many_to_inbox(session.connection(), _stored_entries())
    _check_stored(store, ids)


def test_the_async_driver_stores_the_same_values(store, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the driver's own connection is intake's path on PostgreSQL")
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def insert() -> list[int | None]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as driver:
            return await add_many_with_async_driver(driver, engine.dialect, _stored_entries())

    _check_stored(store, asyncio.run(insert()))


def test_the_async_driver_stores_a_time_in_any_zone_as_its_instant(store, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the driver's own connection is intake's path on PostgreSQL")
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    # An offset with seconds (a zone's local mean time), whole seconds, and a fraction.
    times = [
        datetime(2026, 11, 27, 3, 0, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=10))),
        datetime(2026, 11, 27, 3, 0, 0, 120, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
    ]
    entries = [
        InboxEntry.for_event(
            TIER.model_copy(update={"occurred_at": when}),
            source="internal",
            dedupe_key=f"k:zone:{n}",
            topic=None,
            shop=None,
        )
        for n, when in enumerate(times)
    ]

    async def insert(batch: list[InboxEntry]) -> list[int | None]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as driver:
            return await add_many_with_async_driver(driver, engine.dialect, batch)

    asyncio.run(insert(entries))
    rows = sorted(inbox_rows(store), key=lambda row: row.id)
    assert [row.occurred_at for row in rows] == [when.astimezone(UTC) for when in times]
    naive = InboxEntry.for_event(TIER, source="x", dedupe_key="k:naive", topic=None, shop=None)
    object.__setattr__(naive, "occurred_at", datetime(2026, 11, 27, 3, 0))
    with pytest.raises(ValueError, match="naive datetime"):
        asyncio.run(insert([naive]))
