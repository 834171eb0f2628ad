"""Factories for loyalty tests: a config built from plain dicts, customers and paid orders."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from postpurchase.events import CanonicalEvent, EventType, Refund
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.store.models import Customer, Order, OrderItem

PAID_AT = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)

BASE_CONFIG: dict[str, Any] = {
    "shop_currency": "USD",
    "earning": {"points_per_unit": "1", "rounding": "down"},
    "bonuses": [],
    "expiry": {"mode": "never"},
    "tiers": {
        "window_months": 12,
        "grace_days": 30,
        "levels": [
            {"name": "Bronze"},
            {"name": "Silver", "min_spend": "250", "multiplier": "1.5"},
            {"name": "VIP", "min_spend": "1000", "min_orders": 3, "multiplier": "2"},
        ],
    },
}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def make_config() -> Callable[..., LoyaltyConfig]:
    """``make_config(earning={"rounding": "up"})``: the base config with sections changed."""

    def make(**changes: Any) -> LoyaltyConfig:
        return LoyaltyConfig.model_validate(_merge(BASE_CONFIG, changes))

    return make


_ids = itertools.count(1)


@pytest.fixture
def make_customer() -> Callable[..., Customer]:
    def make(session, **fields: Any) -> Customer:
        n = next(_ids)
        values = {
            "source": "shopify",
            "external_id": f"c{n}",
            "email": f"customer{n}@example.com",
            "first_name": "Ada",
            "last_name": f"Lovelace{n}",
        }
        customer = Customer(**(values | fields))
        session.add(customer)
        session.flush()
        return customer

    return make


@pytest.fixture
def make_order() -> Callable[..., Order]:
    """A paid USD order; amounts are strings or Decimals, ``lines`` (type, quantity, price)."""

    def make(
        session,
        customer: Customer,
        *,
        subtotal: str = "100.00",
        total: str | None = None,
        paid_at: datetime | None = PAID_AT,
        lines: list[tuple[str, int, str]] | None = None,
        **fields: Any,
    ) -> Order:
        n = next(_ids)
        fields = {k: Decimal(v) if k.startswith("total_") else v for k, v in fields.items()}
        values: dict[str, Any] = {
            "source": "shopify",
            "external_id": f"o{n}",
            "customer_id": customer.id,
            "name": f"#{1000 + n}",
            "currency": "USD",
            "subtotal": Decimal(subtotal),
            "total": Decimal(total if total is not None else subtotal),
            "placed_at": paid_at,
            "paid_at": paid_at,
            "financial_status": "paid" if paid_at else "pending",
        }
        order = Order(**(values | fields))
        for i, (product_type, quantity, price) in enumerate(lines or []):
            order.items.append(
                OrderItem(
                    external_id=f"l{n}-{i}",
                    title=f"{product_type} item",
                    product_type=product_type,
                    quantity=quantity,
                    unit_price=Decimal(price),
                )
            )
        session.add(order)
        session.flush()
        return order

    return make


def event(kind: EventType, *, at: datetime = PAID_AT, refund: Refund | None = None):
    return CanonicalEvent(type=kind, occurred_at=at, refund=refund)


@pytest.fixture
def make_event() -> Callable[..., CanonicalEvent]:
    return event
