"""The ``make run`` summary: outcomes told apart, internal events apart, and campaigns that
planned nothing shown with why (SQLite and PostgreSQL)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from event_journeys import at, order_event, process, put
from sqlalchemy import select, update

from postpurchase.campaigns.config import load_campaigns
from postpurchase.demo.summary import summary_lines
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import Customer, CustomerTierChange, Touchpoint, TouchpointStatus

NOW = at("2026-03-20T12:00:00+00:00")


@pytest.fixture
def summary(store):
    shipped = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
    # the shipped control group would hold this one customer out by their id: left out here
    campaigns = shipped.model_copy(
        update={"campaigns": [c.model_copy(update={"holdout": 0}) for c in shipped.campaigns]}
    )
    # A shop's first weeks: an apron delivered (no setup tips for apparel), a CAD order that
    # earns no points in this USD shop, and one customer's move to Silver by the refresh.
    cad = order_event("order.paid", "2026-03-02T09:00:00+00:00", order_id="1030")
    cad["order"]["currency"] = "CAD"
    put(
        store,
        *[
            order_event(kind, moment, order_id="1029", product_type="apparel")
            for kind, moment in (
                ("order.placed", "2026-03-01T15:00:00+00:00"),
                ("order.paid", "2026-03-01T15:01:00+00:00"),
                ("order.fulfilled", "2026-03-03T14:00:00+00:00"),
                ("order.delivered", "2026-03-06T17:00:00+00:00"),
            )
        ],
        cad,
        {
            "type": "tier.changed",
            "occurred_at": "2026-03-10T02:30:00+00:00",
            "customer": {"external_id": "c-77", "email": "mara@example.com"},
            "tier": {"from_tier": "Bronze", "to_tier": "Silver"},
        },
    )
    process(
        store,
        now=NOW,
        campaigns=campaigns,
        loyalty=load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml"),
    )
    with transaction(store) as session:
        customer = session.scalars(select(Customer)).one()
        session.add(
            CustomerTierChange(
                customer_id=customer.id,
                from_tier="Bronze",
                to_tier="Silver",
                changed_at=at("2026-03-10T02:30:00+00:00"),
            )
        )
        # dispatch sent the points email and skipped the check-in
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.campaign_id == "points_earned")
            .values(status=TouchpointStatus.SENT, sent_at=at("2026-03-01T15:06:00+00:00"))
        )
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.campaign_id == "delivery_checkin")
            .values(status=TouchpointStatus.SKIPPED, reason="no email marketing consent")
        )
    with store() as session:
        return summary_lines(session, config=campaigns, now=NOW, shop_zone=ZoneInfo("UTC"))


def test_events_from_the_platform_are_counted_apart_from_internal_ones(summary):
    assert "events received from the platform: 5" in summary
    assert "internal events (tier changes of the segment refresh): 1" in summary
    tier_line = summary.index("internal events (tier changes of the segment refresh): 1")
    assert summary[tier_line + 1].split() == ["tier.changed", "done", "1"]


def test_planned_means_still_to_send_not_skipped(summary):
    assert summary[summary.index("events received from the platform: 5") + 7].startswith(
        "touchpoints: sent 1, skipped 1, still planned 3"
    )
    rows = {line.split()[0]: line.split()[2:] for line in summary if "(email)" in line}
    assert rows == {
        "delivery_checkin": ["0", "1", "0"],  # sent, skipped, still planned
        "points_earned": ["1", "0", "0"],
        "review_request": ["0", "0", "2"],
        "nps_survey": ["0", "0", "1"],
    }


def test_campaigns_that_planned_nothing_say_why(summary):
    why = {line.split()[0]: line.split(" 0 — ", 1)[1] for line in summary if " 0 — " in line}
    assert why == {
        "setup_tips": 'no delivered order matched `when: "electronics" in order.product_types '
        'or "appliances" in order.product_types`',
        "vip_welcome": 'no tier change matched `when: tier.to_tier | lower == "vip"` '
        "(customers moved to Silver)",
        "win_back": "no customer inactive for 60 days yet (the longest: 18 days)",
        "points_expiring": "no points.expiring event yet",
        "reward_issued": "no reward.issued event yet",
        "service_recovery": "no feedback.negative event yet",
    }
