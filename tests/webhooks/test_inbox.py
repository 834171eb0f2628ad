"""The inbox's own contract, for any writer (webhooks, internal events)."""

import json
from datetime import UTC, datetime, timedelta, timezone

from deliveries import inbox_rows
from sqlalchemy import select

from postpurchase.events import CanonicalEvent
from postpurchase.inbox import (
    InboxEntry,
    add_many_to_inbox,
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
