"""Holdout and variant assignment: stable per customer, split as configured, never re-drawn."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from outcome_data import T0, customers, order
from sqlalchemy import func, select

from postpurchase.campaigns.config import CampaignConfig, parse_campaigns
from postpurchase.campaigns.decisions import Occurrence
from postpurchase.campaigns.validation import campaign_problems
from postpurchase.exceptions import ConfigError
from postpurchase.outcomes.assignment import arm_of, variant_of
from postpurchase.processing.planning import plan_touchpoints
from postpurchase.processing.replan import replan_campaign
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import transaction
from postpurchase.store.models import Order, Touchpoint, TouchpointStatus
from postpurchase.yaml_source import SourceMap

UTC_ZONE = ZoneInfo("UTC")


def _config(holdout: str = "10%", delay: str = "7d", **extra: object) -> CampaignConfig:
    return CampaignConfig.model_validate(
        {
            "campaigns": [
                {
                    "id": "review_request",
                    "description": "Ask for a review.",
                    "trigger": "order.delivered",
                    "delay": delay,
                    "channels": ["email"],
                    "template": "review_request",
                    "consent": "marketing",
                    "holdout": holdout,
                    **extra,
                }
            ]
        }
    )


def test_holdout_split_is_within_tolerance_over_ten_thousand_customers():
    campaign = _config().campaigns[0]
    held = sum(arm_of(campaign, n, "salt") == "holdout" for n in range(1, 10_001))
    # 10% of 10,000: binomial sd is 30, so 900..1100 is more than 3 sd either way.
    assert 900 <= held <= 1100


def test_variants_split_by_weight_and_independently_of_the_arm():
    campaign = _config(variants=[{"id": "a", "weight": 3}, {"id": "b", "weight": 1}]).campaigns[0]
    chosen = [variant_of(campaign, n, "salt") for n in range(1, 10_001)]
    assert 7300 <= chosen.count("a") <= 7700
    held_b = sum(
        1
        for n in range(1, 10_001)
        if arm_of(campaign, n, "salt") == "holdout" and chosen[n - 1] == "b"
    )
    assert 180 <= held_b <= 320  # about 10% of the ~2,500 in b


def test_assignment_depends_on_salt_and_campaign_not_on_call_order():
    campaign = _config().campaigns[0]
    first = [arm_of(campaign, n, "salt") for n in range(1, 2001)]
    assert [arm_of(campaign, n, "salt") for n in reversed(range(1, 2001))][::-1] == first
    assert [arm_of(campaign, n, "other") for n in range(1, 2001)] != first
    assert all(arm_of(_config("0%").campaigns[0], n, "salt") == "treatment" for n in range(500))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"holdout": "60%"}, "holdout: at most 50%"),
        ({"holdout": "ten"}, "not a share"),
        ({"variants": [{"id": "a"}]}, "two or more"),
        ({"variants": [{"id": "a"}, {"id": "a"}]}, "unique"),
        ({"variants": [{"id": "a", "weight": 0}, {"id": "b"}]}, "greater than or equal to 1"),
    ],
)
def test_bad_holdouts_and_variants_are_refused(patch, message):
    raw = {
        "campaigns": [
            {
                "id": "review_request",
                "description": "Ask for a review.",
                "trigger": "order.delivered",
                "channels": ["email"],
                "template": "review_request",
                "consent": "marketing",
                **patch,
            }
        ]
    }
    with pytest.raises(ConfigError, match=message):
        parse_campaigns(raw, SourceMap(Path("campaigns.yaml"), {}))


def _plan(store, config, ids):
    with transaction(store) as session:
        occurrences = []
        for customer_id in ids:
            order_id = order(session, customer_id, T0 - timedelta(days=3))
            session.get(Order, order_id).delivered_at = T0
            occurrences.append(
                Occurrence("order.delivered", T0, customer_id, order_id, f"order:{order_id}")
            )
        plan_touchpoints(session, occurrences, config, shop_zone=UTC_ZONE)


def test_held_out_touchpoints_are_recorded_not_sent_and_keep_their_arm_after_a_replan(store):
    with transaction(store) as session:
        ids = customers(session, 400)
    _plan(store, _config("25%"), ids)
    with store() as session:
        before = dict(session.execute(select(Touchpoint.customer_id, Touchpoint.arm)).all())
        held = session.scalars(select(Touchpoint).where(Touchpoint.arm == "holdout")).all()
    assert 60 <= len(held) <= 140
    assert {(t.status, t.reason, t.sent_at) for t in held} == {
        (TouchpointStatus.SKIPPED, "held out (control group)", None)
    }
    campaign = _config("25%").campaigns[0]
    assert all(arm == arm_of(campaign, c, "postpurchase") for c, arm in before.items())

    # A changed share and delay: planned rows move, nobody changes arm, held-out rows stay.
    with transaction(store) as session:
        counts = replan_campaign(
            session, _config("50%", "9d"), "review_request", shop_zone=UTC_ZONE
        )
    assert counts.moved == 400 - len(held)
    with store() as session:
        after = dict(session.execute(select(Touchpoint.customer_id, Touchpoint.arm)).all())
        statuses = set(session.execute(select(Touchpoint.arm, Touchpoint.status).distinct()).all())
    assert after == before
    assert statuses == {
        ("treatment", TouchpointStatus.PLANNED),
        ("holdout", TouchpointStatus.SKIPPED),
    }


def test_a_variant_is_recorded_and_may_bring_its_own_delay(store):
    variants = [{"id": "soon", "delay": "2d"}, {"id": "later"}]
    config = _config("0%", variants=variants)
    with transaction(store) as session:
        ids = customers(session, 200)
    _plan(store, config, ids)
    with store() as session:
        rows = session.execute(select(Touchpoint.variant, Touchpoint.due_at)).all()
    due = {variant: set() for variant in ("soon", "later")}
    for variant, due_at in rows:
        due[variant].add(due_at)
    assert due["soon"] == {T0 + timedelta(days=2)}
    assert due["later"] == {T0 + timedelta(days=7)}
    assert 70 <= len([r for r in rows if r.variant == "soon"]) <= 130
    assert Decimal(config.campaigns[0].holdout) == 0


def test_dispatch_never_claims_a_held_out_touchpoint(store):
    with transaction(store) as session:
        ids = customers(session, 100)
    _plan(store, _config("30%", "0s"), ids)
    with transaction(store) as session:
        claimed = claim_due_touchpoints(
            session, worker="w", now=T0 + timedelta(days=1), limit=1000, lease=timedelta(minutes=5)
        )
        arms = set(session.scalars(select(Touchpoint.arm).where(Touchpoint.id.in_(claimed))).all())
        held = session.scalar(select(func.count()).where(Touchpoint.arm == "holdout"))
    assert arms == {"treatment"} and held and len(claimed) == 100 - held


def test_validation_checks_variant_templates_and_subjects(tmp_path):
    shipped = (PROJECT_ROOT / "config" / "campaigns.yaml").read_text()
    broken = shipped.replace(
        '        subject: "{{ loyalty.points_earned }} points are yours"',
        '        subject: "{{ loyalty.nope }} points"\n        template: no_such_template',
    )
    path = tmp_path / "campaigns.yaml"
    path.write_text(broken)
    problems = campaign_problems(path, PROJECT_ROOT / "templates")
    assert any("variant b: subject does not render" in p for p in problems), problems
    assert any("variant b: template" in p and "is missing" in p for p in problems), problems
    assert (
        campaign_problems(PROJECT_ROOT / "config" / "campaigns.yaml", PROJECT_ROOT / "templates")
        == []
    )
