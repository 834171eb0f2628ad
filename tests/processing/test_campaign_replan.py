"""``postpurchase campaigns replan``: an edited campaign applied to pending touchpoints."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from click.testing import CliRunner
from event_journeys import at, order_event, put, touchpoints, vip_shop_orders
from sqlalchemy import select

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.cli import main
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.loyalty.tiers import refresh_segments
from postpurchase.processing.replan import replan_campaign
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import Touchpoint

SHIPPED = PROJECT_ROOT / "config" / "campaigns.yaml"


def test_replan_applies_an_edited_campaign_to_pending_touchpoints(
    store, drain, tmp_path, monkeypatch
):
    put(store, order_event("order.delivered", "2026-03-06T17:00:00+00:00"))
    drain()
    edited = tmp_path / "campaigns.yaml"
    edited.write_text(
        SHIPPED.read_text()
        .replace("delay: 7d", "delay: 10d")
        .replace("    reminders:\n      delay: 5d\n      count: 1\n", "")
    )
    monkeypatch.setenv("POSTPURCHASE_CAMPAIGNS_FILE", str(edited))

    result = CliRunner().invoke(main, ["campaigns", "replan", "review_request"])

    assert result.exit_code == 0, result.output
    assert "1 touchpoint(s) moved, 0 added, 1 cancelled, 0 unchanged" in result.output
    with store() as session:
        rows = session.execute(
            select(Touchpoint.step, Touchpoint.status, Touchpoint.due_at, Touchpoint.reason)
            .where(Touchpoint.campaign_id == "review_request")
            .order_by(Touchpoint.step)
        ).all()
    assert [(r.step, r.status.value) for r in rows] == [(0, "planned"), (1, "cancelled")]
    assert rows[0].due_at == at("2026-03-16T12:00:00-04:00")
    assert rows[1].reason == "replanned: step or channel no longer in the campaign"
    # Running it again changes nothing.
    again = CliRunner().invoke(main, ["campaigns", "replan", "review_request"])
    assert "0 touchpoint(s) moved, 0 added, 0 cancelled, 1 unchanged" in again.output


def _single(trigger: str, delay: str) -> CampaignConfig:
    return CampaignConfig.model_validate(
        {
            "campaigns": [
                {
                    "id": "follow_up",
                    "description": f"{delay} after {trigger}.",
                    "trigger": trigger,
                    "delay": delay,
                    "channels": ["email"],
                    "template": "follow_up",
                    "consent": "transactional",
                }
            ]
        }
    )


def _replan(store, config, campaign_id):
    with transaction(store) as session:
        return replan_campaign(session, config, campaign_id, shop_zone=ZoneInfo("UTC"))


def test_replan_starts_a_refund_campaign_from_the_first_refund(store, drain):
    refund = {"external_id": "r1", "amount": "10.00", "currency": "USD"}
    later = {"external_id": "r2", "amount": "5.00", "currency": "USD"}
    put(store, order_event("order.refunded", "2026-03-04T09:30:00+00:00", refund=refund))
    drain(config=_single("order.refunded", "2h"))
    put(store, order_event("order.refunded", "2026-03-05T16:00:00+00:00", refund=later))
    drain(config=_single("order.refunded", "2h"))

    counts = _replan(store, _single("order.refunded", "5h"), "follow_up")

    assert (counts.moved, counts.cancelled, counts.added) == (1, 0, 0)
    assert [(c, due, status) for c, _, _, due, status, _ in touchpoints(store)] == [
        ("follow_up", at("2026-03-04T14:30:00+00:00"), "planned")
    ]


def test_replan_starts_a_tier_campaign_from_the_tier_history(store, drain):
    put(store, *vip_shop_orders())
    drain()
    shipped = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    with transaction(store) as session:
        refresh_segments(
            session,
            config=shipped.model_copy(update={"shop_currency": "USD"}),
            now=at("2026-03-20T02:30:00+00:00"),
        )
    drain(now="2026-03-20T03:00:00+00:00")
    welcome = [t for t in touchpoints(store) if t[0] == "vip_welcome"]
    # an hour after the 02:30 UTC upgrade is night in New York: the window opens at 10:00
    assert [(due, status) for _, _, _, due, status, _ in welcome] == [
        (at("2026-03-20T10:00:00-04:00"), "planned")
    ]
    edited = CampaignConfig.model_validate(
        {
            "campaigns": [
                {
                    "id": "vip_welcome",
                    "description": "Two days after reaching VIP.",
                    "trigger": "tier.changed",
                    "delay": "2d",
                    "channels": ["email"],
                    "template": "vip_welcome",
                    "when": 'tier.to_tier | lower == "vip"',
                    "consent": "marketing",
                }
            ]
        }
    )

    counts = _replan(store, edited, "vip_welcome")
    again = _replan(store, edited, "vip_welcome")

    assert (counts.moved, counts.cancelled, again.unchanged) == (1, 0, 1)
    welcome = [t for t in touchpoints(store) if t[0] == "vip_welcome"]
    assert [(due, status) for _, _, _, due, status, _ in welcome] == [
        (at("2026-03-22T02:30:00+00:00"), "planned")
    ]
