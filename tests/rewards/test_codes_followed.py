"""Codes followed to the till: an order carrying the code marks it used; unused codes expire."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select

from postpurchase.campaigns.config import load_campaigns
from postpurchase.loyalty.ledger import balance
from postpurchase.platforms import shopify as shopify_platform
from postpurchase.platforms import woocommerce as woo_platform
from postpurchase.processing.drain import process_inbox
from postpurchase.rewards.lifecycle import expire_codes
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import InboxEvent, Order, Redemption, RedemptionStatus
from postpurchase.webhooks.app import create_app
from tests.webhooks.deliveries import Sender, intake_settings

from .conftest import NOW

GENUINE = Path(__file__).resolve().parents[1] / "fixtures" / "genuine"


def _drain(store, *events, source):
    with transaction(store) as session:
        for n, event in enumerate(events):
            payload = event.as_payload()
            session.add(
                InboxEvent(
                    source=source,
                    dedupe_key=f"codes-test:{source}:{n}",
                    event_type=payload["type"],
                    subject_id=event.subject_id(),
                    occurred_at=event.occurred_at,
                    payload=payload,
                )
            )
    process_inbox(
        store,
        load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
        worker="test",
        shop_zone=ZoneInfo("UTC"),
        lease=timedelta(minutes=5),
        clock=lambda: NOW,
    )


def _redemption(store):
    with transaction(store) as session:
        return session.scalars(select(Redemption)).one()


def test_a_shopify_order_with_the_code_marks_it_used(store, customer_with, shopify_redeemer):
    view = shopify_redeemer.redeem(customer_with(600), "five_off", "k")
    data = json.loads((GENUINE / "shopify" / "admin_api_order_wrapped.json").read_text())["order"]
    assert data["discount_codes"] == [{"code": "TENOFF", "amount": "10.00"}]  # genuine shape
    data["discount_codes"] = [{"code": view.code, "amount": "5.00", "type": "fixed_amount"}]
    event = shopify_platform.normalise("orders/create", data, received_at=NOW)
    assert event is not None and event.order is not None
    assert event.order.discount_codes == [view.code]
    _drain(store, event, source="shopify")
    row = _redemption(store)
    with transaction(store) as session:
        order = session.scalars(select(Order).where(Order.external_id == "450789469")).one()
    assert row.status is RedemptionStatus.USED and row.order_id == order.id
    assert row.used_at == event.occurred_at
    # Used codes neither expire nor come back.
    with transaction(store) as session:
        result = expire_codes(session, config=shopify_redeemer.config, now=NOW + timedelta(days=90))
    assert result.expired == 0 and _redemption(store).status is RedemptionStatus.USED


def test_a_woocommerce_coupon_line_matches_whatever_the_case(store, customer_with, woo_redeemer):
    view = woo_redeemer.redeem(customer_with(600, source="woocommerce"), "five_off", "k")
    data = json.loads((GENUINE / "woocommerce" / "order_processing_docs.json").read_text())
    assert data["coupon_lines"] == []
    data["coupon_lines"] = [
        {
            "id": 318,
            "code": view.code.lower(),
            "discount": "5.00",
            "discount_tax": "0.00",
            "meta_data": [],
        }
    ]
    event = woo_platform.normalise("order.updated", data)
    assert event is not None and event.order is not None
    _drain(store, event, source="woocommerce")
    assert _redemption(store).status is RedemptionStatus.USED


def test_another_code_on_an_order_changes_nothing(store, customer_with, shopify_redeemer):
    shopify_redeemer.redeem(customer_with(600), "five_off", "k")
    data = json.loads((GENUINE / "shopify" / "admin_api_order_wrapped.json").read_text())["order"]
    _drain(
        store, shopify_platform.normalise("orders/create", data, received_at=NOW), source="shopify"
    )
    assert _redemption(store).status is RedemptionStatus.ISSUED


def test_expired_codes_give_points_back_when_the_catalogue_says_so(
    store, customer_with, shopify_redeemer
):
    keeps = customer_with(400)
    returns = customer_with(500)
    shopify_redeemer.redeem(keeps, "ten_percent", "a")  # valid 30 days, no refund
    shopify_redeemer.redeem(returns, "five_off", "b")  # valid 30 days, refund_on_expiry
    with transaction(store) as session:
        early = expire_codes(session, config=shopify_redeemer.config, now=NOW + timedelta(days=29))
    assert early.expired == 0
    later = NOW + timedelta(days=30, seconds=1)
    with transaction(store) as session:
        result = expire_codes(session, config=shopify_redeemer.config, now=later)
    assert (result.expired, result.refunded_points) == (2, 500)
    with transaction(store) as session:
        assert balance(session, keeps) == 0 and balance(session, returns) == 500
        again = expire_codes(session, config=shopify_redeemer.config, now=later)
    assert again.expired == 0
    with transaction(store) as session:
        statuses = session.scalars(select(Redemption.status)).all()
    assert statuses == [RedemptionStatus.EXPIRED, RedemptionStatus.EXPIRED]


def test_a_generic_event_with_the_code_through_intake_marks_it_used(
    store, db_url, customer_with, shopify_redeemer
):
    view = shopify_redeemer.redeem(customer_with(600, shop="tea-house.example"), "five_off", "k")

    def paid_in(shop: str, event_id: str, order_id: str) -> dict:
        return {
            **paid,
            "id": event_id,
            "shop": shop,
            "order": {**paid["order"], "external_id": order_id},
        }

    paid = {
        "id": "evt_reward_1",
        "shop": "tea-house.example",
        "type": "order.paid",
        "occurred_at": NOW.isoformat(),
        "order": {
            "external_id": "A-2001",
            "currency": "USD",
            "total": "42.00",
            "discount_codes": [view.code],
            "customer": {"external_id": "7208815100001", "email": "grace.hopper1@example.com"},
        },
    }
    with TestClient(create_app(intake_settings(db_url), session_factory=store)) as client:
        # another shop's order with the code first: the code is not that shop's to take
        assert (
            Sender(client)
            .generic(paid_in("coffee-house.example", "evt_other_shop", "A-7"))
            .status_code
            == 202
        )
        assert Sender(client).generic(paid).status_code == 202
    process_inbox(
        store,
        load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
        worker="test",
        shop_zone=ZoneInfo("UTC"),
        lease=timedelta(minutes=5),
        clock=lambda: NOW,
    )
    redemption = _redemption(store)
    assert redemption.status is RedemptionStatus.USED
    with store() as session:
        used_on = session.get_one(Order, redemption.order_id)
    assert (used_on.shop, used_on.external_id) == ("tea-house.example", "A-2001")
