"""Webhook fixtures: the app on the test database (``client``) and a signing sender (``send``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deliveries import Sender, intake_settings
from fastapi.testclient import TestClient

from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory
from postpurchase.webhooks.app import create_app


@pytest.fixture
def settings(db_url: str) -> Settings:
    return intake_settings(db_url)


@pytest.fixture
def client(settings: Settings, store: SessionFactory) -> Iterator[TestClient]:
    with TestClient(create_app(settings, session_factory=store)) as test_client:
        yield test_client


@pytest.fixture
def send(client: TestClient) -> Sender:
    return Sender(client)
