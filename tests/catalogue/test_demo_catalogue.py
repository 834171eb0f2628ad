"""The demo feed teaches the engine its products the way Shopify does (product webhooks;
order lines carry no type), so setup tips and the Accessories bonus of the shipped
configuration fire in ``make run``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from deliveries import SHOPIFY_SECRET
from event_journeys import at
from sqlalchemy import select

from postpurchase.demo.feed import build_feed
from postpurchase.demo.replay import shopify_request
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.store.models import (
    LoyaltyLedgerEntry,
    Order,
    OrderItem,
    Product,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.tasks.dispatch import claim_for_run, dispatch_chunk

NOW = "2026-11-27T12:00:00+00:00"


def test_the_demo_feed_gets_setup_tips_and_the_accessories_bonus(client, store, drain, clock):
    clock.now = at(NOW)
    feed = [json.loads(d.to_json()) for d in build_feed(orders=60, now=at(NOW))]
    for delivery in feed:
        body, headers = shopify_request(delivery, SHOPIFY_SECRET)
        assert client.post("/webhooks/shopify", content=body, headers=headers).status_code == 202

    summary = drain(now=NOW, loyalty=load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml"))

    assert summary.failed == 0
    with store() as session:
        known = session.scalars(select(Product).where(Product.source_updated_at.is_not(None)))
        types = {p.external_id: p.product_type for p in known}
        assert len(types) == 9 and "Accessories" in types.values()
        tips = set(
            session.scalars(
                select(Touchpoint.order_id).where(Touchpoint.campaign_id == "setup_tips")
            )
        )
        electronic = set(
            session.scalars(
                select(OrderItem.order_id)
                .join(Order, Order.id == OrderItem.order_id)
                .where(
                    OrderItem.product_id.in_(["7003", "7005", "7008"]),
                    Order.delivered_at.is_not(None),
                )
            )
        )
        notes = session.scalars(select(LoyaltyLedgerEntry.note)).all()
    assert tips, "no setup tips planned"
    assert tips <= electronic  # only orders with an electronics product get them
    assert any("double_points_on_accessories" in (note or "") for note in notes)


def test_in_the_demo_setup_tips_go_out(client, store, drain, db_url, tmp_path, clock):
    """As ``make run`` does: the feed of the last 30 days up to now, processed, then what is
    due dispatched to the outbox."""
    now = datetime.now(UTC)
    clock.now = now
    for delivery in (json.loads(d.to_json()) for d in build_feed(orders=60, now=now)):
        body, headers = shopify_request(delivery, SHOPIFY_SECRET)
        assert client.post("/webhooks/shopify", content=body, headers=headers).status_code == 202
    drain(now=now.isoformat())
    settings = Settings(
        database_url=db_url, var_dir=tmp_path / "var", signing_secret="demo-catalogue-test-secret"
    )

    results = [dispatch_chunk(chunk, settings) for chunk in claim_for_run("manual__demo", settings)]

    assert sum(r["counts"].get("sent", 0) for r in results) > 0
    with store() as session:
        sent = session.scalars(
            select(Touchpoint.id).where(
                Touchpoint.campaign_id == "setup_tips", Touchpoint.status == TouchpointStatus.SENT
            )
        ).all()
    assert sent, "no setup tips went out"
    assert len(list((tmp_path / "var" / "outbox").glob("*-setup_tips.eml"))) == len(sent)
