"""A realistic, reproducible feed of Shopify webhooks for a small shop's last 30 days.

The feed opens with a ``products/create`` for each of the shop's products (type, tags,
vendor, handle, image), as Shopify sends them when products are added: order line items carry
no product type, so that is how the engine learns what was bought. Orders are placed, paid,
fulfilled and (mostly) delivered; some are refunded, cancelled or returned; some customers
come back. Every delivery is what Shopify would POST: topic, ids and the REST-shaped JSON body
with money as decimal strings. The same seed and ``now`` always give the same feed, so a run
can be repeated and compared.

Bodies carry only fields Shopify sends, in its shapes (checked against the genuine payloads
in ``tests/fixtures/genuine/shopify``): line items have no product type (that comes from
product webhooks), customers have no tags (removed from webhooks in API 2025-01), every order
says ``test: false``, and amounts come with their ``*_set`` shop and presentment money.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

SHOP = "nordic-home.myshopify.com"

_PRODUCTS = [
    # (product id, title, product type, vendor, price). The type is the product's, not the
    # line item's: Shopify's order line items carry none.
    (7001, "Oak Desk Lamp", "Lighting", "Lysa", Decimal("89.00")),
    (7002, "Linen Duvet Cover – Sand", "Bedding", "Hem & Co", Decimal("129.00")),
    (7003, "Smart Thermostat T4", "Electronics", "Varme", Decimal("199.00")),
    (7004, "Ceramic Pour-Over Set", "Kitchen", "Krus", Decimal("45.50")),
    (7005, "Wireless Speaker Mini", "Electronics", "Ljud", Decimal("149.99")),
    (7006, "Wool Throw Blanket", "Bedding", "Hem & Co", Decimal("75.00")),
    (7007, "Cast Iron Skillet 26 cm", "Kitchen", "Krus", Decimal("59.90")),
    (7008, "Robot Vacuum R2", "Electronics", "Städa", Decimal("349.00")),
    (7009, "Braided USB-C Cable 2 m", "Accessories", "Ljud", Decimal("19.90")),
]
# Product tags, as the shop set them in its admin (by product type).
_TAGS = {
    "Electronics": "needs-setup, smart-home",
    "Accessories": "add-on",
    "Bedding": "bedroom, natural-fibres",
    "Kitchen": "kitchen",
    "Lighting": "living-room",
}

_PEOPLE = [
    ("Ana", "Lindqvist", "Europe/Stockholm", "SE", "+46701234567"),
    ("Mikael", "Berg", "Europe/Stockholm", "SE", None),
    ("Zoë", "Durand", "Europe/Paris", "FR", "+33612345678"),
    ("James", "O'Neill", "Europe/Dublin", "IE", "+353851234567"),
    ("Priya", "Raman", "America/New_York", "US", "+12125550143"),
    ("", "Okafor", "America/Chicago", "US", None),  # no first name: neutral greeting
    ("Łukasz", "Wiśniewski", "Europe/Warsaw", "PL", "+48501234567"),
    ("Sofia", "Rossi", "Europe/Rome", "IT", None),
    ("Hiro", "Tanaka", "Asia/Tokyo", "JP", None),
    ("Emma", "Schulz", "Europe/Berlin", "DE", "+4915123456789"),
]


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery as Shopify would send it."""

    topic: str
    webhook_id: str
    event_id: str
    triggered_at: datetime
    body: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(
            {
                "platform": "shopify",
                "shop": SHOP,
                "topic": self.topic,
                "webhook_id": self.webhook_id,
                "event_id": self.event_id,
                "triggered_at": _iso(self.triggered_at),
                "body": self.body,
            },
            ensure_ascii=False,
        )


def _ascii(name: str) -> str:
    """An email-safe form of a name: accents dropped, Ł as L, apostrophes removed."""
    folded = unicodedata.normalize("NFKD", name.replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in folded if c.isascii() and c.isalnum())


def _handle(title: str) -> str:
    """Shopify's handle of a title: lower-case ASCII words joined by hyphens."""
    words = "".join(c if c.isalnum() else " " for c in _fold(title).lower()).split()
    return "-".join(words)


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in folded if c.isascii())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _money_set(value: Decimal) -> dict[str, dict[str, str]]:
    """An amount as Shopify's ``*_set``: in the shop's currency and the buyer's (both USD)."""
    amount = {"amount": _money(value), "currency_code": "USD"}
    return {"shop_money": amount, "presentment_money": dict(amount)}


class _FeedBuilder:
    def __init__(self, seed: int, now: datetime, id_offset: int) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.seq = id_offset
        self.order_number = 1000 + id_offset

    def next_id(self) -> int:
        self.seq += 1
        return 5_400_000_000 + self.seq

    def customer(self, index: int) -> dict[str, Any]:
        first, last, _tz, country, phone = _PEOPLE[index % len(_PEOPLE)]
        serial = index // len(_PEOPLE)
        local = _ascii((first or "guest").lower())
        # Since API 2025-01 a customer in a webhook carries no marketing consent: it comes
        # from the consent topics (``_consent_updates``). A third of the customers never
        # answer (unknown), a few unsubscribe later.
        return {
            "id": 6_100_000_000 + index,
            "email": f"{local}.{_ascii(last.lower())}{serial or ''}@example.com",
            "first_name": first or None,
            "last_name": last,
            "phone": phone if serial == 0 else None,
            "currency": "USD",
            "default_address": {"country_code": country},
        }

    def order(self, customer: dict[str, Any], placed: datetime) -> dict[str, Any]:
        self.order_number += 1
        picks = self.rng.sample(_PRODUCTS, self.rng.choice([1, 1, 2, 3]))
        lines = []
        subtotal = Decimal("0")
        for product_id, title, _type, vendor, price in picks:
            quantity = self.rng.choice([1, 1, 1, 2])
            subtotal += price * quantity
            lines.append(
                {
                    "id": self.next_id(),
                    "product_id": product_id,
                    "variant_id": product_id * 10 + 1,
                    "sku": f"SKU-{product_id}",
                    "title": title,
                    "name": title,
                    "variant_title": None,
                    "vendor": vendor,
                    "quantity": quantity,
                    "price": _money(price),
                    "price_set": _money_set(price),
                }
            )
        discount = (subtotal * Decimal("0.10")).quantize(Decimal("0.01")) if len(lines) > 2 else 0
        shipping = Decimal("0") if subtotal >= 100 else Decimal("4.90")
        tax = ((subtotal - discount) * Decimal("0.2")).quantize(Decimal("0.01"))
        total = subtotal - discount + shipping
        order_id = self.next_id()
        return {
            "id": order_id,
            "name": f"#{self.order_number}",
            "order_number": self.order_number,
            "email": customer["email"],
            "contact_email": customer["email"],
            "phone": customer["phone"],
            "test": False,
            "created_at": _iso(placed),
            "updated_at": _iso(placed),
            "processed_at": _iso(placed),
            "currency": "USD",
            "presentment_currency": "USD",
            "subtotal_price": _money(subtotal - Decimal(discount)),
            "subtotal_price_set": _money_set(subtotal - Decimal(discount)),
            "total_line_items_price": _money(subtotal),
            "total_discounts": _money(Decimal(discount)),
            "total_discounts_set": _money_set(Decimal(discount)),
            "total_tax": _money(tax),
            "total_tax_set": _money_set(tax),
            "taxes_included": True,
            "total_price": _money(total),
            "total_price_set": _money_set(total),
            "total_shipping_price_set": _money_set(shipping),
            "financial_status": "pending",
            "fulfillment_status": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "buyer_accepts_marketing": _accepts_marketing(customer),
            "line_items": lines,
            "shipping_address": {
                "first_name": customer["first_name"],
                "last_name": customer["last_name"],
                "country_code": customer["default_address"]["country_code"],
                "phone": customer["phone"],
            },
            "customer": customer,
            "fulfillments": [],
            "refunds": [],
        }

    def consent_updates(self, customer: dict[str, Any], placed: datetime) -> Iterator[Delivery]:
        """What Shopify sends when a customer answers the checkout's marketing boxes, and a
        later unsubscribe for a few: the bodies of the two consent topics."""
        if not _accepts_marketing(customer):
            return  # never ticked the box: no topic, consent stays unknown
        at = placed + timedelta(seconds=5)
        yield self.delivery(
            "customers_email_marketing_consent/update",
            at,
            _email_consent(customer, "subscribed", at),
        )
        if customer["phone"]:
            yield self.delivery(
                "customers_marketing_consent/update",
                at,
                {
                    "id": customer["id"],
                    "phone": customer["phone"],
                    "sms_marketing_consent": {
                        "state": "subscribed",
                        "opt_in_level": "single_opt_in",
                        "consent_updated_at": _iso(at),
                        "consent_collected_from": "SHOPIFY",
                    },
                },
            )
        if customer["id"] % 11 == 4:  # changes their mind a week later
            later = placed + timedelta(days=7)
            if later < self.now:
                yield self.delivery(
                    "customers_email_marketing_consent/update",
                    later,
                    _email_consent(customer, "unsubscribed", later),
                )

    def product(self, product: tuple[int, str, str, str, Decimal], at: datetime) -> dict[str, Any]:
        """A ``products/create`` body in Shopify's REST product shape (one default variant)."""
        product_id, title, product_type, vendor, price = product
        handle = _handle(title)
        created = _iso(at)
        image = {
            "id": product_id * 100 + 1,
            "admin_graphql_api_id": f"gid://shopify/ProductImage/{product_id * 100 + 1}",
            "product_id": product_id,
            "position": 1,
            "created_at": created,
            "updated_at": created,
            "alt": title,
            "width": 1200,
            "height": 1200,
            "src": f"https://cdn.shopify.com/s/files/1/0612/3456/7890/products/{handle}.jpg",
            "variant_ids": [],
        }
        return {
            "id": product_id,
            "admin_graphql_api_id": f"gid://shopify/Product/{product_id}",
            "title": title,
            "body_html": f"<p>{title} from {vendor}.</p>",
            "vendor": vendor,
            "product_type": product_type,
            "created_at": created,
            "handle": handle,
            "updated_at": created,
            "published_at": created,
            "template_suffix": None,
            "published_scope": "web",
            "status": "active",
            "tags": _TAGS.get(product_type, ""),
            "variants": [
                {
                    "id": product_id * 10 + 1,
                    "admin_graphql_api_id": f"gid://shopify/ProductVariant/{product_id * 10 + 1}",
                    "product_id": product_id,
                    "title": "Default Title",
                    "price": _money(price),
                    "sku": f"SKU-{product_id}",
                    "position": 1,
                    "inventory_policy": "deny",
                    "compare_at_price": None,
                    "option1": "Default Title",
                    "option2": None,
                    "option3": None,
                    "created_at": created,
                    "updated_at": created,
                    "taxable": True,
                    "barcode": None,
                    "inventory_quantity": 40,
                    "image_id": None,
                }
            ],
            "options": [
                {
                    "id": product_id * 100 + 2,
                    "product_id": product_id,
                    "name": "Title",
                    "position": 1,
                    "values": ["Default Title"],
                }
            ],
            "images": [image],
            "image": image,
        }

    def delivery(self, topic: str, at: datetime, body: dict[str, Any]) -> Delivery:
        event = self.next_id()
        return Delivery(topic, f"wh-{event}", f"ev-{event}", at, json.loads(json.dumps(body)))


def _accepts_marketing(customer: dict[str, Any]) -> bool:
    return bool(customer["id"] % 3)


def _email_consent(customer: dict[str, Any], state: str, at: datetime) -> dict[str, Any]:
    return {
        "customer_id": customer["id"],
        "email_address": customer["email"],
        "email_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in",
            "consent_updated_at": _iso(at),
        },
    }


def build_feed(
    *, orders: int = 300, seed: int = 2026, now: datetime | None = None, id_offset: int = 0
) -> list[Delivery]:
    """Deliveries for ``orders`` orders placed in the 30 days before ``now``, oldest first.

    Feeds whose ``id_offset`` differs by more than their number of ids share no order,
    webhook or event id (customers are shared: they are the shop's regulars), so both can be
    sent to one shop.
    """
    now = now or datetime.now(UTC)
    builder = _FeedBuilder(seed, now, id_offset)
    rng = builder.rng
    customers = [builder.customer(i) for i in range(max(1, orders * 2 // 3))]
    # The catalogue first: the shop added its products before the month's orders.
    listed = now - timedelta(days=31)
    deliveries: list[Delivery] = [
        builder.delivery(
            "products/create", listed + timedelta(seconds=n), builder.product(p, listed)
        )
        for n, p in enumerate(_PRODUCTS)
    ]
    answered: set[int] = set()  # customers whose checkout consent was already sent
    for _ in range(orders):
        # repeat customers: a third of orders go to someone who already bought
        customer = rng.choice(
            customers[: max(1, len(customers) // 3)] if rng.random() < 0.33 else customers
        )
        placed = now - timedelta(minutes=rng.randint(10, 30 * 24 * 60))
        deliveries.extend(_journey(builder, customer, placed))
        if customer["id"] not in answered:
            answered.add(customer["id"])
            deliveries.extend(builder.consent_updates(customer, placed))
    return sorted(deliveries, key=lambda d: d.triggered_at)


def _journey(
    builder: _FeedBuilder, customer: dict[str, Any], placed: datetime
) -> Iterator[Delivery]:
    rng, now = builder.rng, builder.now
    order = builder.order(customer, placed)
    yield builder.delivery("orders/create", placed, order)

    if rng.random() < 0.04:  # abandoned payment, cancelled by the shop
        cancelled = placed + timedelta(hours=rng.randint(2, 20))
        if cancelled < now:
            order.update(
                cancelled_at=_iso(cancelled), cancel_reason="customer", updated_at=_iso(cancelled)
            )
            order["financial_status"] = "voided"
            yield builder.delivery("orders/cancelled", cancelled, order)
        return

    paid = placed + timedelta(minutes=rng.randint(1, 20))
    if paid > now:
        return
    order.update(financial_status="paid", updated_at=_iso(paid))
    yield builder.delivery("orders/paid", paid, order)

    fulfilled = paid + timedelta(hours=rng.randint(6, 48))
    if fulfilled > now:
        return
    fulfillment_id = builder.next_id()
    tracking = f"JJD0099{fulfillment_id % 10**8:08d}"
    order["fulfillments"] = [
        {
            "id": fulfillment_id,
            "order_id": order["id"],
            "status": "success",
            "created_at": _iso(fulfilled),
            "tracking_company": "PostNord",
            "tracking_number": tracking,
            "tracking_url": f"https://tracking.postnord.com/?id={tracking}",
            "shipment_status": None,
        }
    ]
    order.update(fulfillment_status="fulfilled", updated_at=_iso(fulfilled))
    yield builder.delivery("orders/fulfilled", fulfilled, order)

    if rng.random() < 0.85:  # the carrier reports delivery for most parcels
        delivered = fulfilled + timedelta(hours=rng.randint(20, 96))
        if delivered > now:
            return
        yield builder.delivery(
            "fulfillment_events/create",
            delivered,
            {
                "id": builder.next_id(),
                "fulfillment_id": fulfillment_id,
                "order_id": order["id"],
                "status": "delivered",
                "happened_at": _iso(delivered),
                "created_at": _iso(delivered),
                "message": "Delivered to the recipient",
                "country": customer["default_address"]["country_code"],
            },
        )
    else:
        delivered = fulfilled + timedelta(days=3)

    roll = rng.random()
    after = delivered + timedelta(days=rng.randint(1, 6))
    if after > now:
        return
    if roll < 0.07:  # refund of the first line
        yield builder.delivery("refunds/create", after, _refund(builder, order, after))
    elif roll < 0.12:  # return requested
        yield builder.delivery("returns/request", after, _return_request(builder, order))


def _refund(builder: _FeedBuilder, order: dict[str, Any], after: datetime) -> dict[str, Any]:
    """A refund of the order's first line, as Shopify's refunds/create sends it."""
    line = order["line_items"][0]
    amount = Decimal(line["price"]) * line["quantity"]
    return {
        "id": builder.next_id(),
        "order_id": order["id"],
        "created_at": _iso(after),
        "processed_at": _iso(after),
        "note": "Damaged in transit",
        "restock": True,
        "refund_line_items": [
            {
                "id": builder.next_id(),
                "line_item_id": line["id"],
                "quantity": line["quantity"],
                "subtotal": _money(amount),
                "line_item": line,
            }
        ],
        "transactions": [
            {
                "id": builder.next_id(),
                "order_id": order["id"],
                "kind": "refund",
                "status": "success",
                "amount": _money(amount),
                "currency": "USD",
            }
        ],
    }


def _return_request(builder: _FeedBuilder, order: dict[str, Any]) -> dict[str, Any]:
    """A return of one unit of the first line, as Shopify's returns/request sends it."""
    return_id = builder.next_id()
    return {
        "id": return_id,
        "admin_graphql_api_id": f"gid://shopify/Return/{return_id}",
        "status": "requested",
        "name": f"{order['name']}-R1",
        "order": {
            "id": order["id"],
            "admin_graphql_api_id": f"gid://shopify/Order/{order['id']}",
        },
        "return_line_items": [
            {
                "id": builder.next_id(),
                "quantity": 1,
                "return_reason": "SIZE_TOO_SMALL",
                "fulfillment_line_item": {"line_item": {"id": order["line_items"][0]["id"]}},
            }
        ],
    }


def write_feed(path: Path, deliveries: list[Delivery]) -> None:
    """Write one JSON object per line (the format ``postpurchase replay`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for delivery in deliveries:
            out.write(delivery.to_json() + "\n")
