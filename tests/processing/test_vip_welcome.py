"""Segments and campaigns together: a customer who reaches VIP is welcomed once."""

from __future__ import annotations

from journeys import at, order_event, put, touchpoints

from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.loyalty.segments import refresh_segments
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction


def _shop_orders():
    """One customer with six large orders, five with one small order each."""
    events = []
    for n in range(6):
        customer = f"c-{n}"
        big = n == 0
        for k in range(6 if big else 1):
            day = f"2026-03-0{k + 1}T10:00:00+00:00"
            events.append(
                order_event(
                    "order.paid",
                    day,
                    order_id=f"{n}-{k}",
                    customer_id=customer,
                    email=f"{customer}@example.com",
                    total="600.00" if big else "40.00",
                    placed_at=day,
                )
            )
    return events


def test_a_tier_upgrade_to_vip_plans_exactly_one_welcome(store, drain):
    put(store, *_shop_orders())
    drain()
    shipped = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    loyalty = shipped.model_copy(update={"shop_currency": "USD"})  # the helpers' orders

    # the nightly refresh, twice, each followed by the processing DAG
    for day in ("2026-03-20", "2026-03-21"):
        with transaction(store) as session:
            refresh_segments(session, config=loyalty, now=at(f"{day}T02:30:00+00:00"))
        drain(now=f"{day}T03:00:00+00:00")

    welcomes = [t for t in touchpoints(store) if t[0] == "vip_welcome"]
    assert len(welcomes) == 1
    assert welcomes[0][4] == "planned"
