"""The generic route: canonical events signed with a timestamped HMAC."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from deliveries import GENERIC_PAID as PAID
from deliveries import Sender, inbox_rows, rejected_rows
from fastapi.testclient import TestClient

from postpurchase.events import CanonicalEvent
from postpurchase.webhooks.app import create_app


def test_canonical_event_is_stored_as_sent(send, store):
    response = send.generic(PAID)
    assert response.status_code == 202
    [row] = inbox_rows(store)
    assert (row.source, row.dedupe_key, row.event_type, row.shop, row.subject_id) == (
        "generic",
        "generic:tea-house.example:evt_01JD7Q",
        "order.paid",
        "tea-house.example",
        "A-1001",
    )
    assert row.occurred_at == datetime(2026, 11, 27, 9, tzinfo=UTC)
    event = CanonicalEvent.model_validate(row.payload)
    assert event.order.total == Decimal("59.90")
    assert event.order.customer.email == "mia@example.org"
    assert "id" not in row.payload and "shop" not in row.payload


def test_resend_of_the_same_id_is_a_duplicate(send, store):
    assert send.generic(PAID).status_code == 202
    assert send.generic(PAID).json() == {"status": "duplicate"}
    assert len(inbox_rows(store)) == 1


@pytest.mark.parametrize(
    ("age", "status"), [(0, 202), (-300, 202), (-301, 401), (+301, 401), (-86400, 401)]
)
def test_signatures_older_than_the_tolerance_are_replays(settings, store, age, status):
    now = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)  # the server's clock, injected
    app = create_app(settings, session_factory=store, clock=lambda: now)
    with TestClient(app) as client:
        response = Sender(client).generic(PAID, timestamp=int(now.timestamp()) + age)
    assert response.status_code == status
    if status == 401:
        assert "replayed or delayed" in response.json()["reason"]
        assert inbox_rows(store) == []


def test_missing_or_wrong_signature_is_401(send, store):
    assert send.generic(PAID, headers={"X-Postpurchase-Signature": ""}).status_code == 401
    assert send.generic(PAID, secret="not-it").status_code == 401
    assert inbox_rows(store) == []
    assert [r.status_code for r in rejected_rows(store)] == [401, 401]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"type": "order.refunded"}, "refund", "is required for order.refunded"),
        ({"type": "customer.updated", "order": None}, "customer", "is required"),
        ({"type": "tier.changed"}, "type", "cannot be sent from outside"),
        ({"type": "order.shipped"}, "type", "Input should be"),
        ({"occurred_at": "2026-11-27T10:00:00"}, "occurred_at", "time zone offset"),
        ({"id": ""}, "id", "at least 1 character"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"order": {**PAID["order"], "total": "59.90001"}}, "order.total", "decimal places"),
        ({"order": {**PAID["order"], "currency": "eur"}}, "order.currency", "pattern"),
    ],
)
def test_invalid_events_are_422_naming_field_and_problem(send, store, change, field, problem):
    body = {**PAID, **change}
    response = send.generic({k: v for k, v in body.items() if v is not None})
    assert response.status_code == 422, response.text
    errors = {e["field"]: e["problem"] for e in response.json()["errors"]}
    assert problem in errors[field]
    assert inbox_rows(store) == []


def test_review_needs_the_order_or_the_customer(send, store):
    review = {"id": "r-1", "type": "review.submitted", "occurred_at": "2026-11-27T10:00:00Z"}
    response = send.generic({**review, "review": {"rating": 5}})
    assert response.status_code == 422
    accepted = send.generic({**review, "review": {"rating": 5}, "order": PAID["order"]})
    assert accepted.status_code == 202
    assert [r.event_type for r in inbox_rows(store)] == ["review.submitted"]
