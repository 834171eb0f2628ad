"""Realistic sample data for checking campaigns without a database.

``campaigns validate`` evaluates every ``when`` against ``sample_condition_context()``;
templates are test-rendered with the message renderer's own sample context
(``postpurchase.messages.context.sample_context``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def sample_condition_context() -> dict[str, Any]:
    """The shape ``planning.condition_context`` builds from the database, with sample values."""
    placed = datetime(2026, 11, 2, 15, 4, tzinfo=UTC)
    items = [
        {
            "product_id": "8123456789013",
            "title": "Espresso machine",
            "product_type": "Electronics",
            "vendor": "Brewco",
            "sku": "ESP-100",
            "quantity": 1,
            "unit_price": Decimal("189.00"),
            "tags": ["coffee", "needs-setup"],
            "collections": [],
            "image_url": "https://cdn.shopify.com/s/files/1/0000/0001/products/espresso.jpg",
            "product_url": "https://brewco.myshopify.com/products/espresso-machine",
        },
        {
            "product_id": "8123456790037",
            "title": "Descaling tablets",
            "product_type": "Accessories",
            "vendor": "Brewco",
            "sku": "DSC-12",
            "quantity": 2,
            "unit_price": Decimal("9.50"),
            "tags": ["coffee"],
            "collections": [],
            "image_url": None,
            "product_url": "https://brewco.myshopify.com/products/descaling-tablets",
        },
    ]
    return {
        "order": {
            "name": "#1001",
            "currency": "EUR",
            "total": Decimal("208.00"),
            "subtotal": Decimal("208.00"),
            "total_tax": Decimal("33.21"),
            "total_discounts": Decimal("0"),
            "total_shipping": Decimal("0"),
            "refunded_amount": Decimal("0"),
            "financial_status": "paid",
            "fulfillment_status": "fulfilled",
            "item_count": 3,
            "points_earned": 208,
            "product_types": ["accessories", "electronics"],  # lower-cased, from the catalogue
            "product_tags": ["coffee", "needs-setup"],
            "collections": [],
            "skus": ["ESP-100", "DSC-12"],
            "vendors": ["Brewco"],
            "placed_at": placed,
            "paid_at": placed,
            "fulfilled_at": None,
            "delivered_at": None,
        },
        "customer": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "phone": "+447700900123",
            "locale": "en-GB",
            "time_zone": "Europe/London",
            "email_marketing_consent": "granted",
            "sms_consent": "granted",
            "sms_marketing_consent": "unknown",
        },
        "items": items,
        "tier": {"from_tier": "member", "to_tier": "vip"},
        "review": {"rating": 5, "product_id": "1001"},
    }
