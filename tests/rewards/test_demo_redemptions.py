"""The demo's simulated redemptions: codes issued to the richest customers, two used."""

from __future__ import annotations

from shop_rewards import NOW
from sqlalchemy import select

from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.rewards.demo import simulated_redemptions
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import Order, Redemption, RedemptionStatus


def test_simulated_redemptions_issue_and_use_codes(store, customer_with):
    config = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    rich = [customer_with(points) for points in (900, 450, 320, 120)]
    with transaction(store) as session:
        session.add(
            Order(
                source="shopify",
                external_id="d1",
                name="#D1",
                customer_id=rich[0],
                currency="USD",
                paid_at=NOW,
            )
        )
    lines = simulated_redemptions(store, config, now=NOW)
    assert lines[0] == "rewards (simulated, demo code pool): free_shipping for 300 points"
    assert len([line for line in lines if "-> code DEMO-FREE_SHIPPIN-" in line]) == 3
    assert "used on order #D1 (simulated)" in "\n".join(lines)
    assert lines[-1] == "  codes issued 3, used 1, still to use 2"
    again = simulated_redemptions(store, config, now=NOW)  # a second run: the same codes
    with transaction(store) as session:
        statuses = sorted(s.value for s in session.scalars(select(Redemption.status)))
    assert statuses == ["issued", "issued", "used"] and again[-1] == lines[-1]
    assert RedemptionStatus.USED.value in statuses
