"""Rotating the link-signing secret keeps links already sent working (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from fakes.fixtures import add_customer, add_order, add_touchpoint
from fastapi.testclient import TestClient

from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.store.database import transaction
from postpurchase.store.models import Channel, ConsentState, Customer

OLD = "links-secret-2025-q4-4f1c2a9e7b"
NEW = "links-secret-2026-q1-9d3e6b0a51"


def test_an_unsubscribe_link_signed_with_the_previous_secret_still_works(
    db_url, store, monkeypatch
):
    from postpurchase.webhooks.app import create_app

    with transaction(store) as session:
        customer = add_customer(session)
        order = add_order(session, customer)
        tp = add_touchpoint(
            session, customer, order, "win_back", Channel.EMAIL, datetime(2026, 11, 27, tzinfo=UTC)
        )
        customer_id = customer.id
    # Sent before the rotation, with the old secret.
    old_link = sign(OLD.encode(), LinkClaim("unsubscribe", customer_id, tp.id))
    forged = sign(b"a secret nobody configured", LinkClaim("unsubscribe", customer_id, tp.id))

    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", NEW)
    monkeypatch.setenv("POSTPURCHASE_PREVIOUS_SIGNING_SECRETS", OLD)
    with TestClient(create_app()) as client:
        assert client.post(f"/u/{forged}").status_code == 400
        assert client.post(f"/u/{old_link}").status_code == 200

    with store() as session:
        assert (
            session.get(Customer, customer_id).email_marketing_consent_state is ConsentState.DENIED
        )
