"""WooCommerce order webhooks (REST v3 JSON) to canonical events.

WooCommerce sends the whole order on every ``order.created`` / ``order.updated``; what
happened is read from its ``status``: processing = paid, completed = fulfilled, refunded,
cancelled; anything else is a placed (created) or updated order. A partial refund leaves the
status as it was and only adds to the order's ``refunds``, so every event carries the listed
refunds in ``order.refunds`` and processing treats a refund id it has not recorded yet as a
new refund. Amounts are the decimal strings WooCommerce sends; ``*_gmt`` times are UTC
without an offset. WooCommerce sends names HTML-escaped ("Ship Your Idea &ndash; Color"):
they are decoded here, once, so stored text is plain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import Field, ValidationError

from postpurchase.events import CanonicalEvent, EventType, address_key
from postpurchase.platforms import woocommerce_products
from postpurchase.platforms.fields import (
    GmtTimestamp,
    HtmlText,
    Identifier,
    InvalidPayload,
    Money,
    PlatformModel,
    e164,
    parse_as,
    problems_of,
    usable_email,
)
from postpurchase.platforms.zones import first_zone

SOURCE = "woocommerce"
ORDER_TOPICS = frozenset({"order.created", "order.updated"})
HANDLED_TOPICS = ORDER_TOPICS | woocommerce_products.TOPICS
DEFAULT_REGION = "US"

_STATUS_EVENTS = {
    "processing": EventType.ORDER_PAID,
    "completed": EventType.ORDER_FULFILLED,
    "refunded": EventType.ORDER_REFUNDED,
    "cancelled": EventType.ORDER_CANCELLED,
}


class Address(PlatformModel):
    address_1: HtmlText | None = None
    postcode: str | None = None
    first_name: HtmlText | None = None
    last_name: HtmlText | None = None
    email: str | None = None
    phone: str | None = None
    country: str | None = None
    state: str | None = None


class LineItem(PlatformModel):
    id: Identifier
    product_id: Identifier | None = None
    variation_id: Identifier | None = None
    sku: HtmlText | None = None
    name: HtmlText
    quantity: int = Field(ge=0)
    subtotal: Money  # before discounts, for the whole quantity


class WooRefund(PlatformModel):
    id: Identifier
    reason: HtmlText | None = None
    total: Money  # negative, as WooCommerce lists it


class CouponLine(PlatformModel):
    code: HtmlText


class MetaData(PlatformModel):
    key: str | None = None
    value: Any = None


# The order meta key a referral plugin or checkout field stores the code in.
REFERRAL_META_KEY = "referral_code"


class WooOrder(PlatformModel):
    id: Identifier
    number: str | None = None
    status: str = Field(min_length=1, max_length=32)
    currency: str
    date_created_gmt: GmtTimestamp
    date_modified_gmt: GmtTimestamp
    date_paid_gmt: GmtTimestamp | None = None
    total: Money
    total_tax: Money = Decimal("0")
    discount_total: Money = Decimal("0")
    shipping_total: Money = Decimal("0")
    customer_id: Identifier | None = None
    billing: Address | None = None
    shipping: Address | None = None
    line_items: list[LineItem] = Field(default_factory=list)
    refunds: list[WooRefund] = Field(default_factory=list)
    coupon_lines: list[CouponLine] = Field(default_factory=list)
    meta_data: list[MetaData] = Field(default_factory=list)


def _customer(order: WooOrder, notes: list[str], default_region: str) -> dict[str, Any] | None:
    billing = order.billing or Address()
    email, problem = usable_email(billing.email)
    if problem is not None:  # the order is kept; only the unusable address is left out
        notes.append(f"customer email left out: {problem}")
    # customer_id 0 is a guest checkout: the email is the only stable handle.
    if order.customer_id and order.customer_id != "0":
        external_id = order.customer_id
    elif email:
        external_id = f"guest:{email}"[:64]
    else:
        return None
    regions = (billing.country, order.shipping.country if order.shipping else None)
    # where the parcel goes is where the customer most likely lives
    zone = first_zone(*((a.country, a.state) for a in (order.shipping, billing) if a))
    return dict(
        **({"time_zone": zone} if zone else {}),
        external_id=external_id,
        email=email,
        phone=e164(billing.phone, *regions, default_region),
        first_name=billing.first_name or None,
        last_name=billing.last_name or None,
    )


def _refund_order(refund: WooRefund) -> tuple[int, str]:
    # WooCommerce lists the newest refund first; ids grow, so oldest first is by id.
    return (int(refund.id), "") if refund.id.isdigit() else (0, refund.id)


def normalise(
    topic: str,
    data: Any,
    *,
    received_at: datetime | None = None,
    default_region: str = DEFAULT_REGION,
    notes: list[str] | None = None,
) -> CanonicalEvent | None:
    """The canonical event for an order or product webhook, or None for a topic the engine
    ignores.

    The order's WooCommerce status is kept as ``order.financial_status``; its refunds, oldest
    first, as ``order.refunds`` (whatever the status: a partial refund does not change it).
    ``received_at`` dates a product deletion, which carries no time. Phones without a country
    code are read as the addresses' country, else ``default_region``; an unusable email is
    left out with a note appended to ``notes``. Raises InvalidPayload naming each wrong field.
    """
    if topic in woocommerce_products.TOPICS:
        moment = received_at or datetime.now(UTC)
        return woocommerce_products.normalise(topic, data, received_at=moment)
    if topic not in ORDER_TOPICS:
        return None
    order = parse_as(WooOrder, data)
    kind = _STATUS_EVENTS.get(order.status)
    if kind is None:
        kind = EventType.ORDER_PLACED if topic == "order.created" else EventType.ORDER_UPDATED
    event: dict[str, Any] = dict(
        type=kind,
        occurred_at=order.date_modified_gmt,
        order=dict(
            external_id=order.id,
            name=f"#{order.number or order.id}",
            currency=order.currency,
            subtotal=sum((line.subtotal for line in order.line_items), Decimal(0)),
            total=order.total,
            total_tax=order.total_tax,
            total_discounts=order.discount_total,
            total_shipping=order.shipping_total,
            financial_status=order.status,
            placed_at=order.date_created_gmt,
            paid_at=order.date_paid_gmt,
            updated_at=order.date_modified_gmt,
            cancelled_at=order.date_modified_gmt if order.status == "cancelled" else None,
            **_reward_fields(order),
            lines=[
                dict(
                    external_id=line.id,
                    product_id=line.product_id,
                    variant_id=line.variation_id if line.variation_id != "0" else None,
                    sku=line.sku or None,
                    title=line.name,
                    quantity=line.quantity,
                    unit_price=(
                        (line.subtotal / line.quantity).quantize(Decimal("0.0001"))
                        if line.quantity
                        else line.subtotal
                    ),
                )
                for line in order.line_items
            ],
            customer=_customer(order, notes if notes is not None else [], default_region),
            refunds=[
                dict(
                    external_id=refund.id,
                    amount=abs(refund.total),  # WooCommerce lists money paid back as negative
                    currency=order.currency,
                    reason=(refund.reason or "").strip()[:255] or None,
                )
                for refund in sorted(order.refunds, key=_refund_order)
            ],
        ),
    )
    try:
        return CanonicalEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidPayload(problems_of(exc, "canonical event: ")) from None


def _reward_fields(order: WooOrder) -> dict[str, Any]:
    """What rewards follow on an order: the codes used, the referral code the storefront
    kept in the order's meta data, and the shipping address's key (postpurchase.rewards)."""
    return dict(
        discount_codes=[c.code for c in order.coupon_lines if c.code],
        referral_code=next(
            (
                str(m.value).strip()[:64]
                for m in order.meta_data
                if m.key == REFERRAL_META_KEY and isinstance(m.value, str) and m.value.strip()
            ),
            None,
        ),
        shipping_address_key=(
            address_key(ship.address_1, ship.postcode, ship.country)
            if (ship := order.shipping)
            else None
        ),
    )


def dedupe_key_parts(webhook_id: str, event: CanonicalEvent) -> tuple[str, ...]:
    """What makes a WooCommerce delivery unique: its delivery id is new on every attempt, so
    the key is the webhook, the order, the order's modification time, its status and the ids
    of its refunds (when it has any).

    A refund touches the order's modification time, but only to the second, and a refund
    made while the status changes (WooCommerce adds one when an order is set to refunded) can
    share it: the refund ids keep such a delivery from passing for a duplicate.
    """
    order = event.order
    assert order is not None  # every WooCommerce event is about an order
    modified = order.updated_at.isoformat() if order.updated_at else ""
    parts: tuple[str, ...] = (webhook_id, order.external_id, modified, order.financial_status or "")
    if order.refunds:
        parts += ("refunds=" + ",".join(refund.external_id for refund in order.refunds),)
    return parts


def ping_webhook_id(body: bytes) -> str | None:
    """The webhook id of WooCommerce's creation ping (body ``webhook_id=<id>``), else None."""
    text = body.decode("ascii", errors="replace").strip()
    key, _, value = text.partition("=")
    return value if key == "webhook_id" and value.isdigit() and len(value) <= 20 else None
