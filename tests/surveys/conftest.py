"""Fixtures for survey and complaint tests: the app, signed links, a fake helpdesk."""

from __future__ import annotations

import json

import pytest
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fakes.http_fake import FakeServer, Recorded, Reply
from fastapi.testclient import TestClient
from survey_links import BASE, SECRET, SENT, WEBHOOK_SECRET

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
def client(db_url, monkeypatch, helpdesk):
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("POSTPURCHASE_SHOP_NAME", "Northline Outdoor")
    monkeypatch.setenv("POSTPURCHASE_SUPPORT_EMAIL", "care@northline-outdoor.example")
    monkeypatch.setenv("POSTPURCHASE_SUPPORT_WEBHOOK_URL", f"{helpdesk.url}/hooks/feedback")
    monkeypatch.setenv("POSTPURCHASE_SUPPORT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    with TestClient(create_app()) as test_client:
        yield test_client


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
