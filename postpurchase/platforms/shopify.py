"""Shopify webhooks (REST JSON shape) to canonical events: one webhook, at most one event.

Amounts are read from ``*_set.shop_money`` when present (the shop's currency), else from the
plain decimal-string field with the order's ``currency``. Refunds and fulfillment events do not
carry the whole order: their ``order`` holds what is known (id, currency; ``XXX``, ISO 4217's
"no currency", when the payload names none) and no ``updated_at``, so processing merges them
into the stored order without overwriting newer fields.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from postpurchase.event_structs import CheckedEvent, checked_event
from postpurchase.events import NO_CURRENCY, CanonicalEvent, EventType, address_key
from postpurchase.platforms import shopify_products, shopify_structs
from postpurchase.platforms.fields import (
    InvalidPayload,
    e164,
    parse_as,
    problems_of,
    usable_email,
)
from postpurchase.platforms.shopify_bodies import TopicMismatch, check_body, is_test_order
from postpurchase.platforms.shopify_models import (
    REFERRAL_ATTRIBUTE,
    Address,
    Consent,
    EmailConsentUpdate,
    FulfillmentEvent,
    Metafield,
    MoneySet,
    ReturnRequest,
    ShopifyCustomer,
    ShopifyOrder,
    ShopifyRefund,
    SmsConsentUpdate,
)
from postpurchase.platforms.zones import zone_from_address

__all__ = ["HANDLED_TOPICS", "SOURCE", "TopicMismatch", "decoded_order", "is_test_order"]
__all__ += ["normalise", "normalise_order"]

SOURCE = "shopify"
DEFAULT_REGION = "US"

# An order as the full path validates it, or as intake's fast path decodes it (shopify_structs)
OrderBody = ShopifyOrder | shopify_structs.Order
CustomerBody = ShopifyCustomer | shopify_structs.Customer
ConsentBody = Consent | shopify_structs.Consent


def _shop_money(
    plain: Decimal | None, money_set: MoneySet | shopify_structs.MoneySet | None
) -> Decimal:
    if money_set is not None and money_set.shop_money is not None:
        return money_set.shop_money.amount
    return plain if plain is not None else Decimal("0")


def _email(candidates: tuple[str | None, ...], notes: list[str]) -> str | None:
    """The first usable address among ``candidates``; an unusable one is left out, with a
    note, rather than refusing the whole order for it."""
    for candidate in candidates:
        email, problem = usable_email(candidate)
        if email is not None:
            return email
        if problem is not None:
            notes.append(f"customer email left out: {problem}")
    return None


def _customer(
    customer: CustomerBody,
    *,
    notes: list[str],
    default_region: str,
    email: str | None = None,
    phone: str | None = None,
    regions: tuple[str | None, ...] = (),
    locale: str | None = None,
    addresses: tuple[Address | shopify_structs.Address | None, ...] = (),
) -> dict[str, Any]:
    """The canonical customer; ``addresses`` (most telling first) give a time zone when the
    platform sends none, and are followed by the customer's default address. Phones written
    without a country code are read as the addresses' country, else ``default_region``."""
    home_address = customer.default_address
    home = home_address.country_code if home_address else None
    tags = [t.strip() for t in customer.tags.split(",") if t.strip()] if customer.tags else []
    # Written field by field, without generators or merged dicts: this runs for every order
    # webhook, where those cost more than the fields they make.
    snapshot: dict[str, Any] = {}
    # only when known: an update without an address keeps the zone already stored
    for address in (*addresses, home_address):
        if address and (zone := zone_from_address(address.country_code, address.province_code)):
            snapshot["time_zone"] = zone
            break
    snapshot["external_id"] = customer.id
    snapshot["email"] = _email((customer.email, email), notes)
    snapshot["phone"] = e164(customer.phone or phone, *regions, home, default_region)
    snapshot["first_name"] = customer.first_name
    snapshot["last_name"] = customer.last_name
    snapshot["locale"] = locale
    _add_consent(snapshot, "email_marketing_consent", customer.email_marketing_consent)
    _add_consent(snapshot, "sms_marketing_consent", customer.sms_marketing_consent)
    snapshot["tags"] = tags
    snapshot["updated_at"] = customer.updated_at
    if customer.metafields and (birthday := _birthday(customer.metafields)):
        snapshot["birthday"] = birthday
    return snapshot


def _add_consent(out: dict[str, Any], name: str, consent: ConsentBody | None) -> None:
    """Sets ``name`` and ``name_at`` of the canonical customer ``out`` for an answer the
    payload gives; leaves them out otherwise."""
    # Only answers the customer gave count: "not_subscribed" is a customer who never said yes
    # nor no (unknown, not a "no"); pending, invalid and redacted say nothing either way.
    if consent and consent.state:
        state = consent.state.lower()
        if state == "subscribed" or state == "unsubscribed":
            out[name] = state == "subscribed"
            out[f"{name}_at"] = consent.consent_updated_at


def _birthday(metafields: list[Metafield] | list[shopify_structs.Metafield]) -> date | None:
    """Shopify's standard customer birth date metafield (``facts.birth_date``), if valid."""
    for field in metafields:
        if (field.namespace, field.key) == ("facts", "birth_date") and field.value:
            try:
                return date.fromisoformat(field.value[:10])
            except ValueError:
                return None
    return None


def _order(order: OrderBody, notes: list[str], default_region: str) -> dict[str, Any]:
    # Loops and conditions rather than generators, as in _customer: a generator costs more
    # than the few items it goes over here, most often none.
    ship = order.shipping_address
    bill = order.billing_address
    regions = ((ship.country_code,) if ship is not None else ()) + (
        (bill.country_code,) if bill is not None else ()
    )
    if order.total_shipping_price_set is None:
        lines = order.shipping_lines
        shipping = sum((_shop_money(s.price, s.price_set) for s in lines), Decimal(0))
    else:
        shipping = _shop_money(None, order.total_shipping_price_set)
    currency = order.currency
    if order.total_price_set and order.total_price_set.shop_money:
        currency = order.total_price_set.shop_money.currency_code
    tracking = None
    for fulfillment in order.fulfillments:  # the last one that has a tracking page
        if fulfillment.tracking_url:
            tracking = fulfillment.tracking_url
    referral = None
    for attribute in order.note_attributes:
        if attribute.name == REFERRAL_ATTRIBUTE and attribute.value and attribute.value.strip():
            referral = attribute.value.strip()[:64]
            break
    return {
        "external_id": order.id,
        "name": order.name,
        "currency": currency,
        "subtotal": _shop_money(order.subtotal_price, order.subtotal_price_set),
        "total": _shop_money(order.total_price, order.total_price_set),
        "total_tax": _shop_money(order.total_tax, order.total_tax_set),
        "total_discounts": _shop_money(order.total_discounts, order.total_discounts_set),
        "total_shipping": shipping,
        "financial_status": order.financial_status,
        "fulfillment_status": order.fulfillment_status,
        "tracking_url": tracking,
        "placed_at": order.created_at,
        "updated_at": order.updated_at or order.created_at,
        "cancelled_at": order.cancelled_at,
        "discount_codes": [d.code for d in order.discount_codes if d.code],
        "referral_code": referral,
        "shipping_address_key": (
            address_key(ship.address1, ship.zip, ship.country_code) if ship else None
        ),
        "lines": [
            {
                "external_id": line.id,
                "product_id": line.product_id,
                "variant_id": line.variant_id,
                "sku": line.sku or None,
                "title": line.title,
                "vendor": line.vendor,
                "quantity": line.quantity,
                "unit_price": _shop_money(line.price, line.price_set),
            }
            for line in order.line_items
        ],
        "customer": (
            _customer(
                order.customer,
                notes=notes,
                default_region=default_region,
                email=order.email,
                phone=order.phone or (ship.phone if ship else None),
                regions=regions,
                locale=order.customer_locale,
                # where the parcel goes is where the customer most likely lives
                addresses=(ship, bill),
            )
            if order.customer
            else None
        ),
    }


Builder = Callable[[Any, datetime, list[str], str], dict[str, Any]]


def _order_event(kind: EventType) -> Builder:
    def build(data: Any, received_at: datetime, notes: list[str], region: str) -> dict[str, Any]:
        return _order_event_of(kind, parse_as(ShopifyOrder, data), received_at, notes, region)

    return build


def _order_event_of(
    kind: EventType, body: OrderBody, at: datetime, notes: list[str], region: str
) -> dict[str, Any]:
    order = _order(body, notes, region)
    return {"type": kind, "occurred_at": order["updated_at"] or at, "order": order}


def _refund_event(data: Any, received_at: datetime, *_: Any) -> dict[str, Any]:
    refund = parse_as(ShopifyRefund, data)
    paid_back = [
        t for t in refund.transactions if t.kind == "refund" and t.status in ("success", None)
    ]
    currencies = [t.currency for t in paid_back if t.currency] + [
        line.subtotal_set.shop_money.currency_code
        for line in refund.refund_line_items
        if line.subtotal_set and line.subtotal_set.shop_money
    ]
    currency = currencies[0] if currencies else NO_CURRENCY
    return dict(
        type=EventType.ORDER_REFUNDED,
        occurred_at=refund.created_at,
        order=dict(external_id=refund.order_id, currency=currency),
        refund=dict(
            external_id=refund.id,
            amount=sum((t.amount for t in paid_back), Decimal(0)),
            currency=currency,
        ),
    )


def _fulfillment_event(data: Any, received_at: datetime, *_: Any) -> dict[str, Any]:
    event = parse_as(FulfillmentEvent, data)
    return dict(
        type=(
            EventType.ORDER_DELIVERED if event.status == "delivered" else EventType.SHIPMENT_UPDATED
        ),
        occurred_at=event.happened_at or event.created_at or received_at,
        order=dict(external_id=event.order_id, currency=NO_CURRENCY),
        shipment=dict(status=event.status),
    )


def _return_event(data: Any, received_at: datetime, *_: Any) -> dict[str, Any]:
    request = parse_as(ReturnRequest, data)
    return dict(
        type=EventType.RETURN_REQUESTED,
        occurred_at=received_at,
        order=dict(external_id=request.order.id, currency=NO_CURRENCY),
    )


def _customer_event(
    data: Any, received_at: datetime, notes: list[str], region: str
) -> dict[str, Any]:
    return _customer_change(EventType.CUSTOMER_UPDATED, data, received_at, notes, region)


def _customer_created(
    data: Any, received_at: datetime, notes: list[str], region: str
) -> dict[str, Any]:
    return _customer_change(EventType.CUSTOMER_CREATED, data, received_at, notes, region)


def _customer_change(
    kind: EventType, data: Any, received_at: datetime, notes: list[str], region: str
) -> dict[str, Any]:
    customer = parse_as(ShopifyCustomer, data)
    return dict(
        type=kind,
        occurred_at=customer.updated_at or received_at,
        customer=_customer(customer, notes=notes, default_region=region),
    )


def _email_consent_event(data: Any, received_at: datetime, *_: Any) -> dict[str, Any]:
    update = parse_as(EmailConsentUpdate, data)
    consent = update.email_marketing_consent
    # Only the consent: the topic carries no record version, so it must not touch the rest.
    customer: dict[str, Any] = {"external_id": update.customer_id}
    _add_consent(customer, "email_marketing_consent", consent)
    return dict(
        type=EventType.CUSTOMER_UPDATED,
        occurred_at=(consent.consent_updated_at if consent else None) or received_at,
        customer=customer,
    )


def _sms_consent_event(data: Any, received_at: datetime, *_: Any) -> dict[str, Any]:
    update = parse_as(SmsConsentUpdate, data)
    consent = update.sms_marketing_consent
    customer: dict[str, Any] = {"external_id": update.id}
    _add_consent(customer, "sms_marketing_consent", consent)
    return dict(
        type=EventType.CUSTOMER_UPDATED,
        occurred_at=(consent.consent_updated_at if consent else None) or received_at,
        customer=customer,
    )


_ORDER_TOPICS = {
    "orders/create": EventType.ORDER_PLACED,
    "orders/paid": EventType.ORDER_PAID,
    "orders/updated": EventType.ORDER_UPDATED,
    "orders/fulfilled": EventType.ORDER_FULFILLED,
    "orders/partially_fulfilled": EventType.ORDER_PARTIALLY_FULFILLED,
    "orders/cancelled": EventType.ORDER_CANCELLED,
}
_TOPICS: dict[str, Builder] = {
    **{topic: _order_event(kind) for topic, kind in _ORDER_TOPICS.items()},
    "refunds/create": _refund_event,
    "fulfillment_events/create": _fulfillment_event,
    "returns/request": _return_event,
    "customers/update": _customer_event,
    # Since API 2025-01 customer payloads carry no consent: these topics do.
    "customers_email_marketing_consent/update": _email_consent_event,
    "customers_marketing_consent/update": _sms_consent_event,
    "customers/create": _customer_created,
}
HANDLED_TOPICS = frozenset(_TOPICS) | shopify_products.TOPICS


def normalise(
    topic: str,
    data: Any,
    *,
    received_at: datetime,
    shop: str | None = None,
    default_region: str = DEFAULT_REGION,
    notes: list[str] | None = None,
) -> CanonicalEvent | None:
    """The canonical event for a Shopify webhook, or None for a topic the engine ignores.

    ``received_at`` (Shopify's triggered-at time, else arrival) dates events whose payload
    carries no time of its own; ``shop`` (the shop's domain) makes product links;
    ``default_region`` reads phone numbers written without a country code when no address
    tells. What was left out (an unusable email) is appended to ``notes``. Raises
    TopicMismatch when the body is wrapped or not of the topic's kind, InvalidPayload naming
    each wrong field otherwise.
    """
    if topic in shopify_products.TOPICS:
        return shopify_products.normalise(topic, data, received_at=received_at, shop=shop)
    build = _TOPICS.get(topic)
    if build is None:
        return None
    check_body(topic, data)
    event = build(data, received_at, notes if notes is not None else [], default_region)
    return _canonical(event)


def _canonical(event: dict[str, Any]) -> CanonicalEvent:
    try:
        return CanonicalEvent.model_validate(event)
    except ValidationError as exc:  # Shopify JSON that breaks a rule of the canonical event
        raise InvalidPayload(problems_of(exc, "canonical event: ")) from None


def decoded_order(topic: str, body: bytes) -> shopify_structs.Order | None:
    """The body of an ``orders/*`` webhook decoded on intake's fast path, or None when
    ``parse_json`` and ``normalise`` must decide (``shopify_structs.decode_order``)."""
    return shopify_structs.decode_order(topic, body) if topic in _ORDER_TOPICS else None


def normalise_order(
    topic: str,
    order: shopify_structs.Order,
    *,
    received_at: datetime,
    region: str,
    notes: list[str],
) -> CanonicalEvent | CheckedEvent:
    """``normalise`` of an order from ``decoded_order`` (the same event, the same errors):
    checked without pydantic when it plainly passes (``event_structs``), else validated."""
    event = _order_event_of(_ORDER_TOPICS[topic], order, received_at, notes, region)
    return checked_event(event) or _canonical(event)
