"""What the rewards tests share by name: their clock and a catalogue like the shipped one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)

CONFIG: dict[str, Any] = {
    "shop_currency": "USD",
    "earning": {"points_per_unit": "1"},
    "tiers": {"levels": [{"name": "Bronze"}, {"name": "VIP", "min_spend": "1000"}]},
    "rewards": [
        {
            "name": "five_off",
            "title": "$5 off",
            "kind": "amount_off",
            "amount": "5.00",
            "points": 500,
            "min_order": "25.00",
            "valid_days": 30,
            "refund_on_expiry": True,
        },
        {
            "name": "ten_percent",
            "title": "10% off",
            "kind": "percent_off",
            "percent": 10,
            "points": 400,
        },
        {
            "name": "free_shipping",
            "title": "Free shipping",
            "kind": "free_shipping",
            "points": 300,
            "valid_days": 60,
        },
        {
            "name": "free_tote",
            "title": "A free tote",
            "kind": "free_product",
            "sku": "TOTE-CANVAS-01",
            "points": 200,
        },
        {
            "name": "vip_gift",
            "title": "VIP gift",
            "kind": "percent_off",
            "percent": 20,
            "points": 100,
            "tiers": ["VIP"],
        },
    ],
}
