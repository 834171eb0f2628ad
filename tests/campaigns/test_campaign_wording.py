"""Campaigns in words: every shipped campaign's timing and description, and each form of
trigger, delay, window, reminders and expiry the config accepts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest

from postpurchase.campaigns.config import Campaign, load_campaigns
from postpurchase.campaigns.timing import parse_delay
from postpurchase.campaigns.wording import (
    TRIGGER_WORDS,
    describe_campaign,
    duration_in_words,
    timing_in_words,
)
from postpurchase.journey import Trigger
from postpurchase.settings import PROJECT_ROOT

SHIPPED = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
TEMPLATES = PROJECT_ROOT / "templates"

# What a marketer reads for each campaign shipped in config/campaigns.yaml.
SHIPPED_TIMING = {
    "delivery_checkin": "1 day after delivery, 10:00-19:00 in the customer's zone; "
    "skipped if not sent within 3 days of falling due",
    "setup_tips": "3 days after delivery, 10:00-19:00 in the customer's zone; "
    "skipped if not sent within 5 days of falling due",
    "review_request": "1 week after delivery, 10:00-19:00 in the customer's zone; "
    "then 1 reminder 5 days later; skipped if not sent within 10 days of falling due",
    "nps_survey": "30 days after delivery, 10:00-19:00 in the customer's zone; "
    "skipped if not sent within 1 week of falling due",
    "service_recovery": "5 minutes after negative feedback; "
    "skipped if not sent within 1 hour of falling due",
    "points_earned": "5 minutes after payment; skipped if not sent within 3 days of falling due",
    "vip_welcome": "1 hour after a tier change, 10:00-19:00 in the customer's zone; "
    "skipped if not sent within 1 week of falling due",
    "win_back": "60 days after the customer's last purchase, with none since, "
    "10:00-19:00 in the customer's zone; skipped if not sent within 2 weeks of falling due",
    "reward_issued": "1 minute after a reward code is issued; "
    "skipped if not sent within 2 days of falling due",
    "points_expiring": "right after the warning that points will expire, "
    "10:00-19:00 in the customer's zone; skipped if not sent within 5 days of falling due",
}


def campaign(**fields: object) -> Campaign:
    base: dict[str, object] = {
        "id": "thanks",
        "description": "Thanks.",
        "trigger": "order.paid",
        "channels": ["email"],
        "template": "thanks",
        "consent": "transactional",
    }
    return Campaign.model_validate(base | fields)


def test_every_shipped_campaign_has_its_timing_in_words() -> None:
    assert {c.id: timing_in_words(c) for c in SHIPPED.campaigns} == SHIPPED_TIMING


@pytest.mark.parametrize("trigger", get_args(Trigger))
def test_every_trigger_has_words(trigger: str) -> None:
    words = timing_in_words(campaign(trigger=trigger, delay="2h"))
    assert words == f"2 hours after {TRIGGER_WORDS[trigger]}"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0s", "0 minutes"),
        ("1d", "1 day"),
        ("14d", "2 weeks"),
        ("1w2d", "9 days"),
        ("2h30m", "2 hours 30 minutes"),
        ("1d1h1m1s", "1 day 1 hour 1 minute 1 second"),
        ("P3D", "3 days"),
        ("PT90M", "1 hour 30 minutes"),
        ("PT45S", "45 seconds"),
    ],
)
def test_durations_read_as_marketing_writes_them(text: str, words: str) -> None:
    assert duration_in_words(parse_delay(text)) == words


def test_windows_reminders_and_expiry() -> None:
    assert timing_in_words(campaign(delay="0m")) == "right after payment"
    overnight = campaign(trigger="order.delivered", delay="1d", send_window="20:00-08:00")
    assert timing_in_words(overnight) == (
        "1 day after delivery, 20:00-08:00 (overnight) in the customer's zone"
    )
    reminded = campaign(reminders={"delay": "3d", "count": 2}, expires_after="12h")
    assert timing_in_words(reminded) == (
        "right after payment; then 2 reminders 3 days apart; "
        "skipped if not sent within 12 hours of falling due"
    )


def test_description_of_the_shipped_review_request() -> None:
    review = SHIPPED.by_id("review_request")
    assert review is not None
    described = describe_campaign(review, TEMPLATES)
    assert described.cancel_rules == (
        "stops if the order is refunded",
        "stops if the order is cancelled",
        "stops if a return is requested",
        "stops if the customer leaves a review",
    )
    assert described.channels == "email, or SMS when there is no email address"
    assert described.holdout == Decimal("0.1")
    assert described.consent == "marketing"
    assert described.condition is None


def test_description_lists_locales_variants_and_condition() -> None:
    checkin = SHIPPED.by_id("delivery_checkin")
    points = SHIPPED.by_id("points_earned")
    setup = SHIPPED.by_id("setup_tips")
    assert checkin is not None and points is not None and setup is not None
    assert describe_campaign(checkin, TEMPLATES).locales == ("default", "fr")
    variants = describe_campaign(points, TEMPLATES).variants
    assert [(v.id, v.share) for v in variants] == [("a", Decimal("0.5")), ("b", Decimal("0.5"))]
    assert variants[0].changes == ()
    assert variants[1].changes[0].startswith("subject: ")
    assert "electronics" in (describe_campaign(setup, TEMPLATES).condition or "")


def test_channels_all_and_a_variant_with_its_own_delay(tmp_path: Path) -> None:
    both = campaign(
        channels=["email", "sms"],
        channel_mode="all",
        variants=[{"id": "a"}, {"id": "late", "weight": 3, "delay": "1d", "template": "later"}],
    )
    described = describe_campaign(both, tmp_path)
    assert described.channels == "email and SMS"
    assert described.locales == ("default",)
    assert described.variants[1].share == Decimal("0.75")
    assert described.variants[1].changes == ("template: later", "timing: 1 day after payment")
