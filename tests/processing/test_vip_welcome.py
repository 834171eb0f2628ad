"""Segments and campaigns together: a customer who reaches VIP is welcomed once."""

from __future__ import annotations

from event_journeys import at, put, touchpoints, vip_shop_orders

from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.loyalty.tiers import refresh_segments
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction


def test_a_tier_upgrade_to_vip_plans_exactly_one_welcome(store, drain):
    put(store, *vip_shop_orders())
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
