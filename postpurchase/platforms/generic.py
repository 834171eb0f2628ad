"""The generic event format, for platforms without a normaliser of their own.

A delivery is one canonical event (``postpurchase.events.CanonicalEvent``) plus ``id``, unique
per event at the sender (a resend with the same id is a duplicate), and optionally ``shop``::

    {"id": "evt_01J9", "shop": "store.example", "type": "order.paid",
     "occurred_at": "2026-11-27T10:00:00Z",
     "order": {"external_id": "1001", "currency": "EUR", "total": "59.90", ...}}

Which sections each type needs is in ``REQUIRED``; ``tier.changed`` is internal and refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from postpurchase.events import CanonicalEvent, EventType
from postpurchase.platforms.fields import InvalidPayload, parse_as

SOURCE = "generic"

_ORDER_TYPES = [
    EventType.ORDER_PLACED,
    EventType.ORDER_PAID,
    EventType.ORDER_UPDATED,
    EventType.ORDER_FULFILLED,
    EventType.ORDER_PARTIALLY_FULFILLED,
    EventType.SHIPMENT_UPDATED,
    EventType.ORDER_DELIVERED,
    EventType.ORDER_CANCELLED,
    EventType.RETURN_REQUESTED,
]
REQUIRED: dict[EventType, tuple[str, ...]] = {
    **{kind: ("order",) for kind in _ORDER_TYPES},
    EventType.SHIPMENT_UPDATED: ("order", "shipment"),
    EventType.ORDER_REFUNDED: ("order", "refund"),
    EventType.REVIEW_SUBMITTED: ("review",),
    EventType.CUSTOMER_UPDATED: ("customer",),
    # a platform without product webhooks of its own can keep the catalogue this way
    EventType.PRODUCT_UPDATED: ("product",),
    EventType.PRODUCT_DELETED: ("product",),
}


class GenericDelivery(CanonicalEvent):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    shop: str | None = Field(default=None, min_length=1, max_length=255)


def parse(data: Any) -> tuple[str, str | None, CanonicalEvent]:
    """(event id, shop, canonical event) from a generic delivery; InvalidPayload otherwise."""
    delivery = parse_as(GenericDelivery, data)
    needed = REQUIRED.get(delivery.type)
    if needed is None:
        raise InvalidPayload([("type", f"{delivery.type.value!r} cannot be sent from outside")])
    missing = [
        (name, f"is required for {delivery.type.value}")
        for name in needed
        if getattr(delivery, name) is None
    ]
    if delivery.type is EventType.REVIEW_SUBMITTED and not (delivery.order or delivery.customer):
        missing.append(("order", "review.submitted needs the order or the customer reviewed"))
    if missing:
        raise InvalidPayload(missing)
    # Already validated as a GenericDelivery: the canonical part needs no second pass.
    event = CanonicalEvent.model_construct(
        **{name: getattr(delivery, name) for name in CanonicalEvent.model_fields}
    )
    return delivery.id, delivery.shop, event
