"""The generic normaliser: canonical events as a shop's own system posts them, without the
HTTP route around it (the format is the engine's own: README, "Webhook intake")."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from deliveries import GENERIC_PAID

from postpurchase.events import EventType
from postpurchase.platforms import generic
from postpurchase.platforms.fields import InvalidPayload

# The generic route's sample, with a German phone number written without +49.
PAID = copy.deepcopy(GENERIC_PAID)
PAID["order"]["customer"]["phone"] = "030 901820"


def test_a_paid_order_is_read_with_its_id_shop_and_contacts():
    notes: list[str] = []

    event_id, shop, event = generic.parse(copy.deepcopy(PAID), default_region="DE", notes=notes)

    assert (event_id, shop, event.type) == ("evt_01JD7Q", "tea-house.example", EventType.ORDER_PAID)
    assert event.occurred_at == datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert event.order.total == Decimal("59.90")
    assert [line.unit_price for line in event.order.lines] == [Decimal("12.50"), Decimal("34.90")]
    customer = event.order.customer
    assert customer.email == "mia@example.org"
    assert customer.phone == "+4930901820"  # a German number written without +49
    assert notes == []


def test_an_unusable_contact_is_left_out_with_a_note():
    body = copy.deepcopy(PAID)
    body["order"]["customer"]["email"] = "mia(at)example.org"
    notes: list[str] = []

    _, _, event = generic.parse(body, default_region="DE", notes=notes)

    assert event.order.customer.email is None
    assert len(notes) == 1 and "order.customer" in notes[0]


def test_events_only_the_engine_makes_are_refused():
    body = copy.deepcopy(PAID) | {"type": "tier.changed"}

    with pytest.raises(InvalidPayload, match="cannot be sent from outside"):
        generic.parse(body)


def test_missing_and_wrong_fields_are_named():
    body = copy.deepcopy(PAID)
    del body["order"]
    with pytest.raises(InvalidPayload, match="order"):
        generic.parse(body)
    with pytest.raises(InvalidPayload, match="must be a JSON object"):
        generic.parse(["not", "an", "object"])
