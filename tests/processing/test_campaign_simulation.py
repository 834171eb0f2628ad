"""What-if: a month of the demo shop's real webhooks, taken in and processed day by day, then
replayed against campaign files. The replay plans what production planned, tells a changed
file's effect, writes nothing and holds no lock that intake or processing would wait for."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from deliveries import SHOPIFY_SECRET, intake_settings
from event_journeys import at
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from postpurchase.campaigns.config import CampaignConfig, load_campaigns
from postpurchase.campaigns.validation import load_campaign_source
from postpurchase.demo.feed import build_feed
from postpurchase.demo.replay import shopify_request
from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.config import LoyaltyConfig, load_loyalty_config
from postpurchase.processing.drain import process_inbox
from postpurchase.processing.followups import plan_assumed_deliveries, plan_lapsed_customers
from postpurchase.processing.simulation import Simulation, simulate_campaigns
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import Base, InboxEvent, Order, Touchpoint
from postpurchase.webhooks.app import create_app

NOW = at("2026-11-27T12:00:00+00:00")
ZONE = ZoneInfo("UTC")
SHIPPED = PROJECT_ROOT / "config" / "campaigns.yaml"
TEMPLATES = PROJECT_ROOT / "templates"


@pytest.fixture
def loyalty() -> LoyaltyConfig:
    return load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")


@pytest.fixture
def shipped() -> CampaignConfig:
    return load_campaigns(SHIPPED)


@pytest.fixture
def history(db_url: str, store: SessionFactory, shipped, loyalty) -> SessionFactory:
    """The demo feed as it happened: each day's webhooks received, then processed that
    evening with the shipped campaigns, as the processing DAG would (drain, then follow-ups)."""
    feed = [json.loads(d.to_json()) for d in build_feed(orders=40, now=NOW)]
    clock = {"now": NOW - timedelta(days=32)}
    app = create_app(intake_settings(db_url), session_factory=store, clock=lambda: clock["now"])
    with TestClient(app) as client:
        day = NOW - timedelta(days=32)
        while day <= NOW:
            clock["now"] = day
            for delivery in [d for d in feed if at(d["triggered_at"]) <= day]:
                body, headers = shopify_request(delivery, SHOPIFY_SECRET)
                response = client.post("/webhooks/shopify", content=body, headers=headers)
                assert response.status_code == 202
                feed.remove(delivery)
            summary = process_inbox(
                store,
                shipped,
                worker="test",
                shop_zone=ZONE,
                clock=lambda moment=day: moment,
                loyalty=loyalty,
            )
            assert summary.failed == 0
            with transaction(store) as session:
                plan_assumed_deliveries(session, shipped, now=day, shop_zone=ZONE)
                plan_lapsed_customers(session, shipped, now=day, shop_zone=ZONE)
            day += timedelta(days=1)
    assert not feed
    return store


def simulate(store, candidate, current, loyalty, *, days=30, progress=None) -> Simulation:
    return simulate_campaigns(
        store,
        candidate,
        current,
        now=NOW + timedelta(hours=1),
        days=days,
        shop_zone=ZONE,
        loyalty=loyalty,
        progress=progress,
    )


def by_campaign(simulation: Simulation) -> dict[str, tuple[int, int, int]]:
    return {
        c.campaign_id: (c.candidate.planned, c.candidate.cancelled, c.candidate.too_late)
        for c in simulation.campaigns
        if c.candidate is not None
    }


def test_replaying_all_history_plans_what_production_planned(history, shipped, loyalty):
    simulation = simulate(history, shipped, shipped, loyalty, days=40)

    with history() as session:
        planned = dict(
            session.execute(
                select(Touchpoint.campaign_id, func.count()).group_by(Touchpoint.campaign_id)
            ).all()
        )
    assert simulation.warm_up_events == 0
    assert simulation.events > 150
    replayed = {c: counts[0] for c, counts in by_campaign(simulation).items() if counts[0]}
    assert replayed == planned
    assert {"delivery_checkin", "review_request", "points_earned"} <= replayed.keys()
    # the same file on both sides: the same counts
    assert all(c.candidate == c.current for c in simulation.campaigns)


def test_a_changed_file_shows_its_effect_next_to_the_current_one(history, shipped, loyalty):
    edited = (
        SHIPPED.read_text(encoding="utf-8")
        .replace(
            "  - id: setup_tips\n",
            "  - id: setup_tips\n    enabled: false\n",
        )
        .replace(
            "expires_after: 3d  # a check-in",
            'when: "order.total > 100"\n    expires_after: 3d  # a',
        )
    )
    candidate = load_campaign_source(edited, TEMPLATES)

    simulation = simulate(history, candidate, shipped, loyalty, days=20)

    found = {c.campaign_id: c for c in simulation.campaigns}
    tips, checkin = found["setup_tips"], found["delivery_checkin"]
    assert tips.candidate is not None and tips.current is not None
    assert not tips.candidate.enabled and tips.candidate.planned == 0
    assert tips.current.planned > 0
    assert checkin.candidate is not None and checkin.current is not None
    assert 0 < checkin.candidate.planned < checkin.current.planned
    reasons = dict(checkin.candidate.not_planned)
    assert reasons["condition not met: order.total > 100"] > 0
    assert found["review_request"].candidate == found["review_request"].current
    # earlier events of the window's orders were replayed first, not counted
    assert simulation.warm_up_events > 0
    assert simulation.since == NOW + timedelta(hours=1) - timedelta(days=20)


def test_events_processed_long_after_they_happened_are_too_late(db_url, store, shipped, loyalty):
    """A backlog processed in one go (orders imported weeks late) plans touchpoints already
    past their expiry: the replay says they would be skipped, not sent."""
    feed = [json.loads(d.to_json()) for d in build_feed(orders=20, now=NOW - timedelta(days=5))]
    app = create_app(intake_settings(db_url), session_factory=store, clock=lambda: NOW)
    with TestClient(app) as client:
        for delivery in feed:
            body, headers = shopify_request(delivery, SHOPIFY_SECRET)
            assert (
                client.post("/webhooks/shopify", content=body, headers=headers).status_code == 202
            )
    process_inbox(
        store,
        shipped,
        worker="test",
        shop_zone=ZONE,
        clock=lambda: NOW,
        loyalty=loyalty,
    )

    without_win_back = shipped.model_copy(
        update={"campaigns": [c for c in shipped.campaigns if c.id != "win_back"]}
    )
    simulation = simulate(store, without_win_back, shipped, loyalty)

    counts = by_campaign(simulation)
    planned, _, too_late = counts["delivery_checkin"]
    assert planned > 0 and 0 < too_late <= planned
    assert counts["points_earned"][2] > 0
    # a campaign only the current file has is listed last, with nothing on the file's side
    last = simulation.campaigns[-1]
    assert (last.campaign_id, last.candidate) == ("win_back", None)
    assert last.current is not None and last.current.enabled


def _snapshot(store: SessionFactory) -> dict[str, object]:
    with store() as session:
        rows: dict[str, object] = {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }
        rows["inbox"] = session.execute(
            select(InboxEvent.id, InboxEvent.status, InboxEvent.processed_at).order_by(
                InboxEvent.id
            )
        ).all()
        rows["touchpoints"] = session.execute(
            select(Touchpoint.id, Touchpoint.status, Touchpoint.due_at).order_by(Touchpoint.id)
        ).all()
    return rows


def test_the_replay_writes_nothing_and_blocks_no_writer(history, shipped, loyalty, db_url):
    before = _snapshot(history)
    written: list[int] = []

    def progress(done: int, total: int) -> None:
        # Mid-replay, processing updates orders and intake adds to the inbox: neither waits.
        with transaction(history) as session:
            if db_url.startswith("postgresql"):
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
            session.execute(update(Order).values(name=Order.name))
            session.execute(update(InboxEvent).values(attempts=InboxEvent.attempts))
        written.append(done)

    simulation = simulate(history, shipped, shipped, loyalty, progress=progress)

    assert written and written[-1] == simulation.events
    assert _snapshot(history) == before


def test_an_invalid_edited_file_names_its_line():
    edited = SHIPPED.read_text(encoding="utf-8").replace("delay: 3d", "delay: three days", 1)
    line = edited.splitlines().index("    delay: three days") + 1
    with pytest.raises(ConfigError) as raised:
        load_campaign_source(edited, TEMPLATES)
    assert str(raised.value).startswith(f"campaigns.yaml (edited):{line}: delay:")


def test_a_file_path_is_read_and_checked(tmp_path: Path):
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        SHIPPED.read_text(encoding="utf-8").replace("template: setup_tips", "template: nope")
    )
    with pytest.raises(ConfigError, match=r"campaigns.yaml:\d+: .*nope"):
        load_campaign_source(path, TEMPLATES)
