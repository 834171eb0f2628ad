"""Messages about rewards: reward.issued and points.expiring are planned once per fact and
render with the code or the points; a tier upgrade grants the tier's welcome reward."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from shop_rewards import CONFIG, NOW
from sqlalchemy import select

from postpurchase.campaigns.config import load_campaigns
from postpurchase.events import CanonicalEvent
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger import adjust
from postpurchase.messages.context import ShopProfile, build_context, loyalty_figures
from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, MessageRenderer
from postpurchase.processing.drain import process_inbox
from postpurchase.rewards.messages import expiring_points, plan_reward_messages
from postpurchase.rewards.pool_codes import import_pool_codes
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Customer,
    InboxEvent,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
    Redemption,
    RedemptionStatus,
    Touchpoint,
)

UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture
def campaigns():
    return load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")


def _touchpoints(store):
    with transaction(store) as session:
        return [
            (t.campaign_id, t.channel.value, t.subject_key, t)
            for t in session.scalars(select(Touchpoint).order_by(Touchpoint.id))
        ]


def test_an_issued_code_is_told_once_and_renders(store, customer_with, shopify_redeemer, campaigns):
    customer = customer_with(600)
    view = shopify_redeemer.redeem(customer, "five_off", "k")
    with transaction(store) as session:
        session.get_one(Customer, customer).sms_consent = False
    for _ in range(2):
        with transaction(store) as session:
            plan_reward_messages(
                session,
                campaigns,
                loyalty=shopify_redeemer.config,
                now=NOW + timedelta(minutes=1),
                shop_zone=UTC_ZONE,
            )
    planned = _touchpoints(store)
    assert [(c, ch, s) for c, ch, s, _ in planned] == [
        ("reward_issued", "email", f"reward:{view.id}")
    ]
    shop = ShopProfile.from_settings(Settings(), b"key")
    with transaction(store) as session:
        touchpoint = session.get_one(Touchpoint, planned[0][3].id)
        figures = loyalty_figures(session, {(customer, None)})[(customer, None)]
        context = build_context(
            shop,
            touchpoint=touchpoint,
            customer=session.get_one(Customer, customer),
            order=None,
            loyalty=figures,
        )
    email = MessageRenderer(DEFAULT_TEMPLATES_DIR).render_email("reward_issued", context)
    assert view.code in email.html and view.code in email.text
    assert "$5 off" in email.subject and "December 30, 2026" in email.text
    assert "5.00 USD off on orders of 25.00 USD or more" in email.text
    assert "/rewards/" in email.html  # the signed rewards page


@pytest.fixture
def expiring_config():
    config = dict(CONFIG)
    config["expiry"] = {"mode": "after_earned", "months": 12, "notice_days": 14}
    return LoyaltyConfig.model_validate(config)


def test_points_expiring(store, customer_with, expiring_config, campaigns):
    customer = customer_with(0)
    with transaction(store) as session:
        for n, (points, expires) in enumerate([(300, 10), (200, 12), (400, 40)]):
            order = Order(
                source="shopify",
                external_id=f"x{n}",
                customer_id=customer,
                currency="USD",
                paid_at=NOW,
            )
            session.add(order)
            session.flush()
            session.add(
                LoyaltyLedgerEntry(
                    customer_id=customer,
                    order_id=order.id,
                    kind=LedgerKind.AWARD,
                    points=points,
                    cause=f"award:order:{order.id}",
                    expires_at=NOW + timedelta(days=expires),
                )
            )
        adjust(session, customer_id=customer, points=-100, reason="spent at the till")
    with transaction(store) as session:
        found = expiring_points(session, config=expiring_config, now=NOW)
        assert found == [(customer, NOW + timedelta(days=10), 400)]  # 500 due, 100 spent
        plan_reward_messages(
            session, campaigns, loyalty=expiring_config, now=NOW, shop_zone=UTC_ZONE
        )
    planned = _touchpoints(store)
    assert [(c, s) for c, _, s, _ in planned] == [
        ("points_expiring", f"points_expiring:{customer}:2026-12-10:400")
    ]


def test_a_tier_upgrade_grants_the_welcome_reward_once(store, customer_with, campaigns):
    config_data = {
        **CONFIG,
        "tiers": {
            "levels": [
                {"name": "Bronze"},
                {"name": "VIP", "min_spend": "1000", "welcome_reward": "vip_gift"},
            ]
        },
    }
    loyalty = LoyaltyConfig.model_validate(config_data)
    customer = customer_with(0)
    with transaction(store) as session:
        import_pool_codes(session, "vip_gift", ["VIPGIFT-01", "VIPGIFT-02"])
        external = session.get_one(Customer, customer).external_id
    event = CanonicalEvent.model_validate(
        {
            "type": "tier.changed",
            "occurred_at": NOW.isoformat(),
            "customer": {"external_id": external},
            "tier": {"from_tier": "Bronze", "to_tier": "VIP"},
        }
    ).as_payload()
    for n in range(2):
        with transaction(store) as session:
            session.add(
                InboxEvent(
                    source="shopify",
                    dedupe_key=f"tier:{n}",
                    event_type="tier.changed",
                    occurred_at=NOW,
                    payload=event,
                )
            )
        process_inbox(
            store,
            campaigns,
            worker="t",
            shop_zone=UTC_ZONE,
            clock=lambda: NOW,
            loyalty=loyalty,
        )
    with transaction(store) as session:
        gift = session.scalars(select(Redemption)).one()
        ledger = session.scalars(select(LoyaltyLedgerEntry)).all()
    assert (gift.reward, gift.points, gift.code, gift.status) == (
        "vip_gift",
        0,
        "VIPGIFT-01",
        RedemptionStatus.ISSUED,
    )
    assert ledger == []  # a gift costs no points
