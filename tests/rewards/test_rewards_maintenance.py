"""The loyalty maintenance DAG's rewards step: a crashed redemption is completed, old codes
expire; run twice, the second run changes nothing."""

from __future__ import annotations

from datetime import timedelta

from fakes.fake_shopify_admin import ACCESS_TOKEN
from shop_rewards import NOW
from sqlalchemy import select

from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.rewards.redemption import lock_customer, reserve
from postpurchase.settings import PROJECT_ROOT, load_settings
from postpurchase.store.database import transaction
from postpurchase.store.models import Redemption, RedemptionStatus
from postpurchase.tasks.rewards import settle_rewards

SHIPPED = PROJECT_ROOT / "config" / "loyalty.yaml"


def test_pending_completed_and_expired_refunded(store, customer_with, shopify, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_REWARDS_PLATFORM", "shopify")
    monkeypatch.setenv("POSTPURCHASE_SHOPIFY_SHOP_DOMAIN", "northwind.myshopify.com")
    monkeypatch.setenv("POSTPURCHASE_SHOPIFY_ADMIN_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("POSTPURCHASE_SHOPIFY_ADMIN_URL", shopify.url)
    config = load_loyalty_config(SHIPPED)
    customer_id = customer_with(800)
    with transaction(store) as session:  # the debit committed, then the process died
        reserve(
            session,
            customer=lock_customer(session, customer_id),
            reward_name="free_shipping",  # 60 days, points back on expiry
            key="crashed",
            config=config,
            platform="shopify",
            now=NOW,
        )
    settings = load_settings()
    first = settle_rewards(SHIPPED, settings=settings, now=NOW + timedelta(minutes=10))
    assert first.startswith("pending redemptions: 1 issued, 0 refunded, 0 still pending")
    with transaction(store) as session:
        row = session.scalars(select(Redemption)).one()
    assert row.status is RedemptionStatus.ISSUED and shopify.codes() == [row.code]
    later = NOW + timedelta(days=61)
    expired = settle_rewards(SHIPPED, settings=settings, now=later)
    assert "codes expired: 1 (300 point(s) given back)" in expired
    again = settle_rewards(SHIPPED, settings=settings, now=later)
    assert "0 issued" in again and "codes expired: 0" in again
    assert len(shopify.requests) == 1
