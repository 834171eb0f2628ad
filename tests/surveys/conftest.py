"""Fixtures for survey and complaint tests: the app, signed links, a fake helpdesk."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import pytest
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fakes.http_fake import FakeServer, Recorded, Reply
from fastapi.testclient import TestClient
from survey_links import BASE, SECRET, SENT, WEBHOOK_SECRET

from postpurchase.settings import Settings
from postpurchase.store.database import transaction
from postpurchase.store.models import Channel
from postpurchase.surveys.notify import signature
from postpurchase.webhooks.app import create_app


class FakeHelpdesk(FakeServer):
    """A helpdesk's incoming webhook: checks the signature, keeps what it accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[dict] = []

    def handle(self, request: Recorded) -> Reply:
        stamp = int(request.headers["X-Postpurchase-Timestamp"])
        expected = signature(WEBHOOK_SECRET.encode(), stamp, request.body)
        if request.headers.get("X-Postpurchase-Signature") != expected:
            return Reply(401, b"bad signature")
        self.accepted.append(
            {"key": request.headers["Idempotency-Key"], **json.loads(request.body)}
        )
        return Reply(202, b"{}")


@pytest.fixture
def helpdesk():
    server = FakeHelpdesk().start()
    yield server
    server.stop()


@pytest.fixture
def app_client(db_url, store, monkeypatch, helpdesk):
    """``app_client(**settings)``: a client of the app built with the complaint loop's settings
    and these. The same settings are in the environment, where the notification task reads
    them."""
    values = {
        "public_base_url": BASE,
        "signing_secret": SECRET,
        "shop_name": "Northline Outdoor",
        "support_email": "care@northline-outdoor.example",
        "support_webhook_url": f"{helpdesk.url}/hooks/feedback",
        "support_webhook_secret": WEBHOOK_SECRET,
    }
    for name, value in values.items():
        monkeypatch.setenv(f"POSTPURCHASE_{name.upper()}", value)
    with ExitStack() as clients:

        def make(**overrides: Any) -> TestClient:
            settings = Settings(**{"database_url": db_url, **values, **overrides})
            return clients.enter_context(TestClient(create_app(settings, session_factory=store)))

        yield make


@pytest.fixture
def client(app_client):
    return app_client()


@pytest.fixture
def answered(store):
    """Chloé's delivered order with a delivery check-in, an NPS survey and a review request."""
    with transaction(store) as session:
        chloe = add_customer(
            session, first_name="Chloé", last_name="Martin", email="chloe.martin@example.org"
        )
        order = add_order(session, chloe, name="#1042")
        ids = {"customer": chloe.id, "order": order.id}
        for campaign in ("delivery_checkin", "nps_survey", "review_request"):
            ids[campaign] = add_touchpoint(session, chloe, order, campaign, Channel.EMAIL, SENT).id
        return ids
