"""Catalogue fixtures: the webhook app on the test database with a signing sender, and a
drain of the inbox with the shipped campaigns (or others)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from deliveries import Sender, intake_settings
from event_journeys import at, process
from fastapi.testclient import TestClient

from postpurchase.campaigns.config import CampaignConfig, load_campaigns
from postpurchase.processing.batch import InboxSummary
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.store.database import SessionFactory
from postpurchase.webhooks.app import create_app


@pytest.fixture
def settings(db_url: str) -> Settings:
    return intake_settings(db_url)


class Clock:
    """The app's clock, set by a test: the arrival time of what it sends."""

    def __init__(self) -> None:
        self.now = at("2026-11-20T14:14:06+00:00")

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings: Settings, store: SessionFactory, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, session_factory=store, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def send(client: TestClient) -> Sender:
    return Sender(client)


@pytest.fixture
def campaigns_with(tmp_path: Path) -> Callable[..., CampaignConfig]:
    """The shipped campaigns with some campaigns' ``when`` replaced (by campaign id)."""

    def make(**when: str) -> CampaignConfig:
        path = PROJECT_ROOT / "config" / "campaigns.yaml"
        data = copy.deepcopy(yaml.safe_load(path.read_text(encoding="utf-8")))
        for campaign in data["campaigns"]:
            if campaign["id"] in when:
                campaign["when"] = when[campaign["id"]]
        edited = tmp_path / "campaigns.yaml"
        edited.write_text(yaml.safe_dump(data), encoding="utf-8")
        return load_campaigns(edited)

    return make


@pytest.fixture
def drain(store: SessionFactory) -> Callable[..., InboxSummary]:
    def run(now: str = "2026-11-20T15:00:00+00:00", config=None, loyalty=None) -> InboxSummary:
        return process(store, now=at(now), campaigns=config, loyalty=loyalty, worker="test-worker")

    return run
