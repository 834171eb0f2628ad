"""The generic event format, for platforms without a normaliser of their own.

A delivery is one canonical event (``postpurchase.events.CanonicalEvent``) plus ``id``, unique
per event at the sender (a resend with the same id is a duplicate), and optionally ``shop``::

    {"id": "evt_01J9", "shop": "store.example", "type": "order.paid",
     "occurred_at": "2026-11-27T10:00:00Z",
     "order": {"external_id": "1001", "currency": "EUR", "total": "59.90", ...}}

Which sections each type needs is in ``REQUIRED``; ``tier.changed`` is internal and refused.
Customers' contacts are cleaned as the platforms' are: phones to E.164 (the shop's country for
numbers without a country code), and an unusable email or phone is left out with a note
rather than refusing the whole event.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from postpurchase.events import CanonicalEvent, EventType
from postpurchase.platforms.fields import InvalidPayload, e164, parse_as, usable_email

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


def _clean_contacts(customer: Any, path: str, region: str, notes: list[str]) -> Any:
    """``customer`` (raw JSON) with its email checked and its phone in E.164."""
    if not isinstance(customer, dict):
        return customer
    cleaned = dict(customer)
    email = cleaned.get("email")
    if isinstance(email, str):
        usable, problem = usable_email(email)
        cleaned["email"] = usable
        if problem is not None:
            notes.append(f"{path}.email left out: {problem}")
    phone = cleaned.get("phone")
    if isinstance(phone, str) and len(phone) <= 64:
        cleaned["phone"] = e164(phone, region)
        if phone.strip() and cleaned["phone"] is None:
            notes.append(f"{path}.phone left out: not a phone number")
    return cleaned


def parse(
    data: Any, *, default_region: str = "US", notes: list[str] | None = None
) -> tuple[str, str | None, CanonicalEvent]:
    """(event id, shop, canonical event) from a generic delivery; InvalidPayload otherwise.

    What was left out (an unusable email or phone) is appended to ``notes``.
    """
    notes = notes if notes is not None else []
    if isinstance(data, dict):
        data = dict(data)
        if "customer" in data:
            data["customer"] = _clean_contacts(data["customer"], "customer", default_region, notes)
        order = data.get("order")
        if isinstance(order, dict) and "customer" in order:
            data["order"] = {
                **order,
                "customer": _clean_contacts(
                    order["customer"], "order.customer", default_region, notes
                ),
            }
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
