"""The signed generic privacy route, on both databases: a request is stored at once and
fulfilled by housekeeping like Shopify's; bad input is refused fast with a JSON reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deliveries import GENERIC_SECRET
from sqlalchemy import select
from test_generic import PAID
from test_privacy import NOW, _places_mentioning, _process, privacy_settings

from postpurchase.privacy.requests import fulfil_pending
from postpurchase.store.models import ClaimStatus, Customer, InboxEvent, PrivacyRequest
from postpurchase.webhooks.signatures import sign_generic

ROUTE = "/privacy/requests"
ERASE = {
    "id": "dsr-2026-0042",
    "kind": "erase",
    "shop": "tea-house.example",
    "customer": {"external_id": "c-77", "email": "mia@example.org"},
    "orders": ["A-1001"],
    "requested_at": "2026-11-30T09:00:00Z",
}


@pytest.fixture
def settings(db_url, monkeypatch):
    return privacy_settings(db_url, monkeypatch)


def _post(client, body, *, secret: str = GENERIC_SECRET, content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": content_type,
        "X-Postpurchase-Signature": sign_generic(raw, secret, int(time.time())),
    }
    return client.post(ROUTE, content=raw, headers=headers)


def test_an_erase_request_is_stored_then_fulfilled(client, send, store, settings):
    assert send.generic(PAID).status_code == 202
    _process(store)
    answer = _post(client, ERASE)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"
    assert _post(client, ERASE).json() == {"status": "duplicate"}
    with store() as session:
        row = session.scalars(select(InboxEvent).where(InboxEvent.topic == "privacy/erase")).one()
        assert (row.source, row.event_type, row.status) == (
            "generic",
            "privacy.erase",
            ClaimStatus.IGNORED,
        )
    assert fulfil_pending(store, settings, now=NOW) == 1
    assert _places_mentioning(store, ["mia@example.org"], settings.var_dir / "outbox") == []
    with store() as session:
        request = session.scalars(select(PrivacyRequest)).one()
        customer = session.scalars(select(Customer)).one()
    assert (request.kind, request.origin, request.subject) == ("erase", "generic", "generic:c-77")
    assert request.requested_at == datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert request.fulfilled_at == NOW and request.customer_id == customer.id
    assert customer.external_id == f"erased:{customer.id}" and customer.email is None


def test_an_export_request_by_email_writes_the_export(client, send, store, settings):
    send.generic(PAID)
    _process(store)
    body = {
        "id": "dsr-7",
        "kind": "export",
        "shop": "tea-house.example",
        "customer": {"email": "MIA@example.org"},
    }
    assert _post(client, body).status_code == 202
    assert fulfil_pending(store, settings, now=NOW) == 1
    with store() as session:
        request = session.scalars(select(PrivacyRequest)).one()
    document = json.loads(Path(request.result["file"]).read_text())
    assert document["profile"]["external_id"] == "c-77"
    assert document["orders"][0]["external_id"] == "A-1001"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer": {}}, "customer"),
        ({"customer": {"email": "not an address"}}, "customer.email"),
        ({"kind": "delete"}, "kind"),
        ({"id": ""}, "id"),
        ({"platform": "magento"}, "platform"),
        ({"requested_at": "2026-11-30T09:00:00"}, "requested_at"),
        ({"requested_at": "2999-01-01T00:00:00Z"}, "requested_at"),
        ({"orders": "A-1001"}, "orders"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, store, change, field):
    answer = _post(client, {**ERASE, **change})
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]], answer.json()
    with store() as session:
        assert session.scalars(select(InboxEvent)).all() == []


def test_unsigned_malformed_or_not_json_is_refused(client, store):
    assert _post(client, ERASE, secret="guess").status_code == 401
    assert "bad signature" in _post(client, ERASE, secret="guess").json()["reason"]
    assert _post(client, b"{not json").status_code == 400
    assert _post(client, ERASE, content_type="text/plain").status_code == 415
    assert _post(client, [ERASE]).status_code == 422
    with store() as session:
        assert session.scalars(select(InboxEvent)).all() == []
