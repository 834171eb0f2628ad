"""Deliverability guard (pause, wait, resume) and the report's shapes, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from outcome_data import T0, customers, event, order, touchpoint
from sqlalchemy import select

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.cli import main
from postpurchase.outcomes.guard import check_deliverability, paused_campaigns
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import transaction
from postpurchase.store.models import CampaignPause, Touchpoint, TouchpointStatus
from postpurchase.tasks.outcomes import measure_outcomes

CONFIG = CampaignConfig.model_validate(
    {
        "outcomes": {"guard": {"min_sends": 100}},
        "campaigns": [
            {
                "id": "review_request",
                "description": "Ask for a review.",
                "trigger": "order.delivered",
                "channels": ["email"],
                "template": "review_request",
                "consent": "marketing",
                "holdout": "10%",
            },
            {
                "id": "points_earned",
                "description": "Points.",
                "trigger": "order.paid",
                "channels": ["email"],
                "template": "points_earned",
                "consent": "transactional",
                "variants": [{"id": "a"}, {"id": "b", "subject": "Points!"}],
            },
        ],
    }
)
NOW = T0 + timedelta(days=3)


def _sends(session, ids, campaign, *, complaints=0, bounces=0):
    tps = [touchpoint(session, c, campaign=campaign) for c in ids]
    for tp in tps[:complaints]:
        event(session, tp, "spamreport", T0 + timedelta(hours=5))
    for tp in tps[complaints : complaints + bounces]:
        event(session, tp, "bounce", T0 + timedelta(minutes=1))
    return tps


def test_complaints_over_the_limit_pause_the_campaign_until_resumed(store, db_url):
    with transaction(store) as session:
        ids = customers(session, 400)
        _sends(session, ids[:200], "review_request", complaints=1)  # 0.5%
        _sends(session, ids[200:], "points_earned", bounces=10)  # 5% exactly: not over
        waiting = Touchpoint(
            subject_key="order:later",
            campaign_id="review_request",
            channel="email",
            customer_id=ids[0],
            due_at=NOW - timedelta(minutes=1),
            status=TouchpointStatus.PLANNED,
        )
        session.add(waiting)
    with transaction(store) as session:
        summary = measure_outcomes(session, CONFIG, now=NOW)
    assert "PAUSED review_request: spam complaints 0.5% of 200 recent sends (limit 0.3%)" in (
        summary
    )
    with transaction(store) as session:
        assert list(paused_campaigns(session)) == ["review_request"]
        # the waiting touchpoint is not claimed, nor dropped
        assert (
            claim_due_touchpoints(
                session, worker="w", now=NOW, limit=10, lease=timedelta(minutes=5)
            )
            == []
        )
        assert session.get(Touchpoint, waiting.id).status == TouchpointStatus.PLANNED

    result = CliRunner().invoke(main, ["campaigns", "resume", "review_request"])
    assert result.exit_code == 0, result.output
    assert "review_request: resumed" in result.output
    again = CliRunner().invoke(main, ["campaigns", "resume", "review_request"])
    assert again.exit_code == 2 and "is not paused" in again.output

    with transaction(store) as session:
        # the old complaint is before the resume: it does not pause the campaign again
        assert check_deliverability(session, CONFIG, now=datetime.now(UTC)) == []
        claimed = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=10, lease=timedelta(minutes=5)
        )
        assert claimed == [waiting.id]
        assert session.scalars(select(CampaignPause.resumed_at)).one() is not None


def test_report_json_has_the_documented_shape(store, db_url):
    with transaction(store) as session:
        ids = customers(session, 40)
        for n, customer in enumerate(ids):
            arm = "holdout" if n % 10 == 0 else "treatment"
            variant = "a" if n % 2 else "b"
            tp = touchpoint(session, customer, arm=arm)
            touchpoint(
                session,
                customer,
                campaign="points_earned",
                variant=variant,
                sent_at=T0 + timedelta(hours=2),
            )
            if arm == "treatment" and n % 3 == 0:
                event(session, tp, "click", T0 + timedelta(hours=1), url="https://shop/x")
                order(session, customer, T0 + timedelta(days=1), "25.50")
    with transaction(store) as session:
        measure_outcomes(session, CONFIG, now=NOW)

    since = (datetime.now(UTC) - T0).days + 1
    result = CliRunner().invoke(main, ["report", "--since", f"{since}d", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)

    assert {"campaigns", "uplift", "kpis"} <= report.keys()
    for row in report["campaigns"]:
        assert {
            "id",
            "variant",
            "arm",
            "planned",
            "held_out",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "converted",
            "revenue",
            "unsubscribed",
            "complaints",
        } <= row.keys()
    rows = {(r["id"], r["variant"], r["arm"]): r for r in report["campaigns"]}
    assert set(rows) == {
        ("review_request", None, "treatment"),
        ("review_request", None, "holdout"),
        ("points_earned", "a", "treatment"),
        ("points_earned", "b", "treatment"),
    }
    treated = rows[("review_request", None, "treatment")]
    assert (treated["planned"], treated["sent"], treated["clicked"]) == (36, 36, 12)
    assert (treated["converted"], treated["revenue"]) == (12, "306.00")
    assert rows[("review_request", None, "holdout")]["held_out"] == 4
    (uplift,) = report["uplift"]
    assert set(uplift) >= {
        "campaign",
        "treatment_rate",
        "holdout_rate",
        "uplift",
        "ci_low",
        "ci_high",
        "significant",
    }
    assert (uplift["campaign"], uplift["treatment_rate"], uplift["holdout_rate"]) == (
        "review_request",
        round(12 / 36, 4),
        0.0,
    )
    assert set(report["kpis"]) >= {
        "repeat_purchase_rate",
        "csat",
        "nps",
        "review_rate",
        "points_outstanding",
    }

    csv_out = CliRunner().invoke(
        main, ["report", "--since", "all", "--format", "csv", "--campaign", "points_earned"]
    )
    assert csv_out.output.splitlines()[0].startswith("id,variant,arm,planned,held_out,sent")
    assert len(csv_out.output.splitlines()) == 3
    table = CliRunner().invoke(main, ["report", "--since", "all"])
    assert "uplift review_request: not significant yet" in table.output
