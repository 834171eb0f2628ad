"""Consent tests reach the app through its signed routes: the webhook sender (``send``); the
provider fakes and dispatcher come from ``fakes.fixtures`` (registered in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deliveries import Sender, intake_settings
from fastapi.testclient import TestClient

from postpurchase.store.database import SessionFactory
from postpurchase.webhooks.app import create_app


@pytest.fixture
def send(db_url: str, store: SessionFactory) -> Iterator[Sender]:
    app = create_app(intake_settings(db_url), session_factory=store)
    with TestClient(app) as client:
        yield Sender(client)
