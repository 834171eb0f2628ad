"""Provider routes and customer links refuse bad input at the door (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from fakes.fake_twilio import AUTH_TOKEN
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.store.database import transaction
from postpurchase.store.models import Channel, MessageEvent, Suppression, SurveyResponse
from postpurchase.webhooks.app import create_app

BASE = "https://hooks.shop.example.com/postpurchase"
SECRET = "edge-test-signing-secret"
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
LIMIT = 4096


@pytest.fixture
def env(db_url, monkeypatch, fake_sendgrid):
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY", fake_sendgrid.public_key)
    monkeypatch.setenv("POSTPURCHASE_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("POSTPURCHASE_WEBHOOK_MAX_BODY_BYTES", str(LIMIT))
    return monkeypatch


@pytest.fixture
def client(env):
    with TestClient(create_app()) as test_client:
        yield test_client


def _count(store, model):
    with store() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def _chunks(total: int, size: int = 1024):
    sent = 0
    while sent < total:
        sent += size
        yield b"x" * size


@pytest.mark.parametrize(
    "path", ["/webhooks/sendgrid/events", "/webhooks/twilio/status", "/webhooks/twilio/inbound"]
)
def test_provider_routes_refuse_big_bodies_before_reading_them(client, path):
    declared = client.post(path, content=b"x" * (LIMIT + 1))
    # Without Content-Length (chunked): counted while streaming, refused past the limit.
    streamed = client.post(path, content=_chunks(LIMIT * 4))

    assert declared.status_code == streamed.status_code == 413, declared.text


@pytest.mark.parametrize(
    ("path", "unset"),
    [
        ("/webhooks/sendgrid/events", "POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY"),
        ("/webhooks/twilio/inbound", "POSTPURCHASE_TWILIO_AUTH_TOKEN"),
    ],
)
def test_unconfigured_provider_route_answers_503_without_reading(env, path, unset):
    env.delenv(unset)
    with TestClient(create_app()) as client:
        # Far over the limit: a route that read first would answer 413.
        response = client.post(path, content=b"x" * (LIMIT * 2))

    assert response.status_code == 503
    assert response.headers["Retry-After"]


def _event(kind, email, event_id, **extra):
    return {"email": email, "timestamp": 1795960800, "event": kind, "sg_event_id": event_id} | extra


def test_stale_sendgrid_batch_is_refused(client, store, fake_sendgrid):
    body = json.dumps([_event("unsubscribe", "anna@example.org", "ev-old")]).encode()
    headers = fake_sendgrid.events.headers_for(body, signed_at=time.time() - 365 * 86400)

    response = client.post("/webhooks/sendgrid/events", content=body, headers=headers)

    assert response.status_code == 401
    assert "timestamp" in response.json()["error"]
    assert _count(store, Suppression) == _count(store, MessageEvent) == 0


def test_one_bad_sendgrid_event_is_skipped_not_the_batch(client, store, fake_sendgrid):
    events = [
        _event("bounce", "bob@example.org", "ev-1", type="bounce"),
        _event("open", "anna@example.org", "ev-2", touchpoint_id=10**30),
        _event("delivered", "anna@example.org", "ev-3", touchpoint_id="9" * 40),
        _event("open", "anna@example.org", "ev-4", note="nul \u0000 inside"),
        _event("spamreport", "dan@example.org", "ev-5"),
    ]
    body, headers = fake_sendgrid.signed_events(events)

    response = client.post("/webhooks/sendgrid/events", content=body, headers=headers)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["received"] == 5
    assert answer["new"] + answer["skipped"] == 5
    with store() as session:
        suppressed = set(session.execute(select(Suppression.address)).scalars())
        ids = set(session.execute(select(MessageEvent.provider_event_id)).scalars())
    assert suppressed == {"bob@example.org", "dan@example.org"}
    assert {"ev-1", "ev-2", "ev-3", "ev-5"} <= ids


def _link(purpose, customer_id, touchpoint_id, score=None):
    return sign(SECRET.encode(), LinkClaim(purpose, customer_id, touchpoint_id, score))


def test_survey_get_records_nothing_and_the_posted_answer_is_kept(client, store):
    with transaction(store) as session:
        anna = add_customer(session)
        order = add_order(session, anna)
        tp = add_touchpoint(session, anna, order, "delivery_checkin", Channel.EMAIL, NOW)
    links = {score: _link("survey", anna.id, tp.id, score) for score in range(1, 6)}

    # A mail scanner opens all five links, in order: nothing is recorded.
    pages = [client.get(f"/s/{links[score]}") for score in range(1, 6)]
    assert all(p.status_code == 200 for p in pages)
    assert 'value="2" checked' in pages[1].text and 'method="post"' in pages[1].text
    assert _count(store, SurveyResponse) == 0

    # The person clicked 2, then changed it to 3 on the page and sent it.
    answer = client.post(f"/s/{links[2]}", data={"score": "3"})
    scanner_again = client.get(f"/s/{links[5]}")

    assert answer.status_code == 200 and "3 out of 5" in answer.text
    assert scanner_again.status_code == 200
    with store() as session:
        assert session.execute(select(SurveyResponse.score)).scalar_one() == 3


def test_survey_post_refuses_a_score_out_of_range(client, store):
    with transaction(store) as session:
        anna = add_customer(session)
        tp = add_touchpoint(session, anna, None, "delivery_checkin", Channel.EMAIL, NOW)
    token = _link("survey", anna.id, tp.id, 4)

    for bad in ("0", "6", "x", "44"):
        assert client.post(f"/s/{token}", data={"score": bad}).status_code == 422
    assert _count(store, SurveyResponse) == 0


def test_api_docs_are_off_unless_asked_for(env):
    with TestClient(create_app()) as client:
        hidden = [client.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")]
    env.setenv("POSTPURCHASE_API_DOCS", "true")
    with TestClient(create_app()) as client:
        shown = [client.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")]

    assert hidden == [404, 404, 404]
    assert shown == [200, 200, 200]
