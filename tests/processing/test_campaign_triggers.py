"""Every trigger a campaign can name plans from its event; a broken file changes nothing."""

from __future__ import annotations

import pytest
from event_journeys import at, order_event, put, touchpoints
from sqlalchemy import select

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.exceptions import ConfigError
from postpurchase.settings import load_settings
from postpurchase.store.models import ClaimStatus, InboxEvent
from postpurchase.tasks.processing import drain_inbox

ORDER_TRIGGERS = [
    "order.placed",
    "order.paid",
    "order.fulfilled",
    "order.delivered",
    "order.refunded",
    "order.cancelled",
    "return.requested",
    "review.submitted",
]


def _config_for(trigger: str) -> CampaignConfig:
    return CampaignConfig.model_validate(
        {
            "campaigns": [
                {
                    "id": "follow_up",
                    "description": f"Two hours after {trigger}.",
                    "trigger": trigger,
                    "delay": "2h",
                    "channels": ["email"],
                    "template": "follow_up",
                    "consent": "transactional",
                }
            ]
        }
    )


@pytest.mark.parametrize("trigger", ORDER_TRIGGERS)
def test_each_order_trigger_plans_from_its_event(store, drain, trigger):
    extra = {}
    if trigger == "order.refunded":
        extra["refund"] = {"external_id": "r1", "amount": "10.00", "currency": "USD"}
    put(store, order_event(trigger, "2026-03-04T09:30:00+00:00", **extra))

    drain(config=_config_for(trigger))

    assert [(c, s, ch, due) for c, s, ch, due, _, _ in touchpoints(store)] == [
        ("follow_up", 0, "email", at("2026-03-04T11:30:00+00:00"))
    ]


def test_an_invalid_campaign_file_fails_the_task_and_changes_nothing(store, tmp_path, monkeypatch):
    ids = put(store, order_event("order.delivered", "2026-03-06T17:00:00+00:00"))
    broken = tmp_path / "campaigns.yaml"
    broken.write_text("version: 1\ncampaigns:\n  - id: x\n    trigger: order.shipped\n")
    monkeypatch.setenv("POSTPURCHASE_CAMPAIGNS_FILE", str(broken))

    with pytest.raises(ConfigError) as caught:
        drain_inbox(load_settings())

    assert f"{broken}:4: trigger: Input should be" in str(caught.value)
    with store() as session:
        row = session.scalars(select(InboxEvent).where(InboxEvent.id == ids[0])).one()
    assert (row.status, row.attempts) == (ClaimStatus.PENDING, 0)
    assert touchpoints(store) == []
