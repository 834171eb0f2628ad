"""Fixtures for processing tests: the shipped campaigns, and draining the inbox."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from event_journeys import at

from postpurchase.campaigns.config import load_campaigns
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT

# Shipped campaigns with their own tests (tests/processing/test_feedback_campaigns.py): left
# out here, so that these tests keep pinning the journey of the other campaigns exactly.
FEEDBACK_CAMPAIGNS = frozenset({"nps_survey", "service_recovery"})


@pytest.fixture
def campaigns():
    # These tests follow given customers through every campaign; the shipped control group
    # (holdout, tests/outcomes) would hold some of them out by their id, so it is left out,
    # and the feedback campaigns have tests of their own.
    shipped = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
    kept = [
        c.model_copy(update={"holdout": 0})
        for c in shipped.campaigns
        if c.id not in FEEDBACK_CAMPAIGNS
    ]
    return shipped.model_copy(update={"campaigns": kept})


@pytest.fixture
def shipped_loyalty():
    return load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")


@pytest.fixture
def drain(store, campaigns, shipped_loyalty):
    """Process the whole inbox at a fixed time, with the shipped campaigns and loyalty rules
    by default (``loyalty=False``: without a loyalty programme)."""

    def run(
        now: str = "2026-03-20T12:00:00+00:00", config=None, worker="test-worker", loyalty=None
    ):
        if loyalty is None:
            loyalty = shipped_loyalty
        elif loyalty is False:
            loyalty = None
        moment = at(now)
        return process_inbox(
            store,
            config or campaigns,
            worker=worker,
            shop_zone=ZoneInfo("UTC"),
            clock=lambda: moment,
            loyalty=loyalty,
        )

    return run
