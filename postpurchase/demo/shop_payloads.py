"""The demo shop and its webhook bodies: its products and regular customers, and the
Shopify payloads (orders, customers, products, consent updates) the feed is made of, as
Shopify sends them."""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

SHOP = "nordic-home.myshopify.com"


PRODUCTS = [
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
                "triggered_at": iso(self.triggered_at),
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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _money_set(value: Decimal) -> dict[str, dict[str, str]]:
    """An amount as Shopify's ``*_set``: in the shop's currency and the buyer's (both USD)."""
    amount = {"amount": money(value), "currency_code": "USD"}
    return {"shop_money": amount, "presentment_money": dict(amount)}


class FeedBuilder:
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
        picks = self.rng.sample(PRODUCTS, self.rng.choice([1, 1, 2, 3]))
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
                    "price": money(price),
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
            "created_at": iso(placed),
            "updated_at": iso(placed),
            "processed_at": iso(placed),
            "currency": "USD",
            "presentment_currency": "USD",
            "subtotal_price": money(subtotal - Decimal(discount)),
            "subtotal_price_set": _money_set(subtotal - Decimal(discount)),
            "total_line_items_price": money(subtotal),
            "total_discounts": money(Decimal(discount)),
            "total_discounts_set": _money_set(Decimal(discount)),
            "total_tax": money(tax),
            "total_tax_set": _money_set(tax),
            "taxes_included": True,
            "total_price": money(total),
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
                        "consent_updated_at": iso(at),
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
        created = iso(at)
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
                    "price": money(price),
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
            "consent_updated_at": iso(at),
        },
    }
