"""``CampaignRule.schedule`` (what planning makes its rows from) and ``decide`` agree."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from postpurchase.campaigns.config import Campaign
from postpurchase.campaigns.decisions import CampaignRule, Decision, Facts, Occurrence, Step
from postpurchase.campaigns.timing import due_times

BERLIN = ZoneInfo("Europe/Berlin")
# Saturday 28 March 2026, 21:30 in Berlin; clocks go forward that night.
AT = datetime(2026, 3, 28, 20, 30, tzinfo=UTC)


def campaign(**fields: object) -> Campaign:
    base: dict[str, object] = {
        "id": "review",
        "description": "Review.",
        "trigger": "order.delivered",
        "delay": "1d",
        "send_window": "10:00-19:00",
        "channels": ["email", "sms"],
        "channel_mode": "all",
        "reminders": {"delay": "3d", "count": 2},
        "template": "review",
        "consent": "marketing",
        "cancel_on": ["order.refunded"],
    }
    return Campaign.model_validate(base | fields)


def facts(*, email: str | None = "a@example.com", refunded: bool = False) -> Facts:
    order = {"financial_status": "refunded" if refunded else "paid", "total": 12}
    customer = {"email": email, "phone": "+4930123456"}
    return Facts(order=order, customer=customer, items=[], zone=BERLIN)


def occurrence() -> Occurrence:
    return Occurrence("order.delivered", AT, 7, 9, "order:9")


def test_each_due_time_is_a_step_on_each_channel_in_order():
    rule = CampaignRule(campaign())
    reason, channels, times = rule.schedule(occurrence(), facts())
    assert reason is None
    assert times == due_times(AT, rule._delays, campaign().send_window, BERLIN)
    assert rule.decide(occurrence(), facts()) == Decision(
        steps=tuple(Step(s, c, due) for s, due in enumerate(times) for c in ("email", "sms"))
    )
    assert [step.step for step in rule.decide(occurrence(), facts()).steps] == [0, 0, 1, 1, 2, 2]


def test_the_reasons_nothing_is_planned_are_decided_alike():
    cases = [
        (campaign(), facts(refunded=True), "order.refunded already happened"),
        (campaign(when="order.total > 100"), facts(), "condition not met: order.total > 100"),
        (campaign(channels=["email"]), facts(email=None), "the customer has no email"),
    ]
    for rule_of, known, reason in cases:
        rule = CampaignRule(rule_of)
        assert rule.schedule(occurrence(), known) == (reason, (), ())
        assert rule.decide(occurrence(), known) == Decision(reason=reason)
