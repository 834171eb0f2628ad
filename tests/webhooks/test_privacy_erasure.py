"""Erasure's harder cases on both databases: an address that had opted out stays suppressed
after its customer is erased (without the address in clear), a late update of an erased
customer's order starts a new profile, refund reasons leave with retention, and a Yotpo URL
secret never reaches the logs."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from deliveries import fixture_json, intake_settings
from fakes.fixtures import add_customer, add_order, add_touchpoint
from servers import free_port
from sqlalchemy import select
from test_privacy import EMAIL, NOW, PHONE, _genuine, _order, _process, privacy_settings

from postpurchase.messages.tokens import signing_key
from postpurchase.privacy.requests import erase, fulfil_pending
from postpurchase.privacy.retention import purge_personal_fields
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    ConsentState,
    Customer,
    InboxEvent,
    LoyaltyLedgerEntry,
    Order,
    Suppression,
    Touchpoint,
)
from postpurchase.webhooks.app import create_app


@pytest.fixture
def settings(db_url, monkeypatch):
    return privacy_settings(db_url, monkeypatch)


def test_a_late_update_of_an_erased_customers_order_starts_a_new_profile(send, store, settings):
    send.shopify("orders/create", _order(299938, "2026-11-20T10:00:00-05:00"))
    send.shopify("orders/paid", _order(299938, "2026-11-20T10:05:00-05:00"))
    _process(store)
    send.shopify("customers/redact", _genuine("customers_redact_docs"))
    assert fulfil_pending(store, settings, now=NOW) == 1
    with store() as session:
        husk = session.scalars(select(Customer)).one()
        touchpoints_before = set(session.scalars(select(Touchpoint.id)))
        ledger_before = session.scalars(select(LoyaltyLedgerEntry.id)).all()
    # delivered late: older than the version the order already has
    late = _order(299938, "2026-11-20T10:01:00-05:00")
    late["fulfillment_status"] = "fulfilled"
    assert send.shopify("orders/updated", late).status_code == 202
    _process(store)
    with store() as session:
        customers = session.scalars(select(Customer).order_by(Customer.id)).all()
        order = session.scalars(select(Order)).one()
        new = [t for t in session.scalars(select(Touchpoint)) if t.id not in touchpoints_before]
        ledger_after = session.scalars(select(LoyaltyLedgerEntry.id)).all()
    assert [(c.id, c.external_id, c.email) for c in customers] == [
        (husk.id, f"erased:{husk.id}", None),
        (husk.id + 1, "191167", EMAIL),
    ]
    assert order.customer_id == customers[1].id  # not the erased profile
    assert all(t.customer_id != husk.id for t in new)
    assert ledger_after == ledger_before


def test_an_erased_address_that_had_opted_out_stays_suppressed(
    store, settings, make_dispatcher, fake_sendgrid, fake_twilio
):
    email, phone = "lea.martin@example.org", "+33612345678"
    with transaction(store) as session:
        erased = add_customer(session, email=email, phone=phone)
        session.add(Suppression(channel=Channel.EMAIL, address=email, reason="unsubscribe"))
        session.add(Suppression(channel=Channel.SMS, address=phone, reason="stop"))
        session.flush()
        erase(session, erased, settings=settings, now=NOW)
    with store() as session:
        kept = session.scalars(select(Suppression).order_by(Suppression.id)).all()
    assert [(s.channel, s.reason) for s in kept] == [
        (Channel.EMAIL, "unsubscribe"),
        (Channel.SMS, "stop"),
    ]
    assert all(s.address.startswith("hmac:") for s in kept)
    assert not any(email in s.address or phone in s.address for s in kept)

    # the address comes back in a later order: a new profile, whose consent says nothing yet
    with transaction(store) as session:
        again = add_customer(
            session,
            email=email.upper(),
            phone=phone,
            email_marketing_consent_state=ConsentState.UNKNOWN,
        )
        order = add_order(session, again)
        add_touchpoint(session, again, order, "delivery_checkin", Channel.EMAIL, NOW)
        add_touchpoint(session, again, order, "setup_tips", Channel.SMS, NOW)
        ids = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=10, lease=timedelta(minutes=5)
        )
    keys = (signing_key(settings),)
    assert make_dispatcher(NOW, suppression_keys=keys).run_chunk("w", ids) == {"skipped": 2}
    assert fake_sendgrid.sent == [] and fake_twilio.sent == []
    with store() as session:
        reasons = sorted(session.scalars(select(Touchpoint.reason)))
    assert reasons == ["suppressed (stop)", "suppressed (unsubscribe)"]


def _woo_order_with_refund() -> dict:
    data = fixture_json("genuine/woocommerce/order_completed_docs.json")
    note = f"Call {PHONE}: parcel left at the neighbour's"
    data["refunds"] = [{"id": 730, "reason": note, "total": "-10.00"}]
    return data


def test_retention_drops_refund_reasons(send, store, settings):
    reason = "Customer said the jumper was itchy, phone her back"
    generic = {
        "id": "evt-refund-1",
        "type": "order.refunded",
        "occurred_at": "2026-11-27T10:00:00Z",
        "order": {"external_id": "A-1", "currency": "EUR", "total": "10.00"},
        "refund": {"external_id": "r-1", "amount": "10.00", "currency": "EUR", "reason": reason},
    }
    assert send.generic(generic).status_code == 202
    assert send.woocommerce("order.updated", _woo_order_with_refund()).status_code == 202
    _process(store)
    with store() as session:
        stored = " ".join(str(r.payload) for r in session.scalars(select(InboxEvent)))
    assert reason in stored and PHONE in stored
    later = datetime.now(UTC) + timedelta(days=31)
    purged = purge_personal_fields(store, now=later, retention=timedelta(days=30))
    assert purged.inbox_payloads == 2
    with store() as session:
        payloads = {r.source: r.payload for r in session.scalars(select(InboxEvent))}
    assert "reason" not in payloads["generic"]["refund"]
    assert payloads["generic"]["refund"]["amount"] == "10.00"
    [refund] = payloads["woocommerce"]["order"]["refunds"]
    assert refund == {"external_id": "730", "amount": "10.00", "currency": "USD"}


def test_the_yotpo_url_secret_never_reaches_the_access_log(db_url, store, monkeypatch, caplog):
    token = "yotpo-url-secret-3f9a"
    monkeypatch.setenv("POSTPURCHASE_YOTPO_WEBHOOK_TOKEN", token)
    monkeypatch.setenv("POSTPURCHASE_YOTPO_APP_KEY", "yotpo-app-key")
    app = create_app(intake_settings(db_url), session_factory=store)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        answer = httpx.post(f"http://127.0.0.1:{port}/webhooks/yotpo/{token}", json={"x": 1})
        assert answer.status_code == 400  # not a review: refused after the URL was checked
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/webhooks/yotpo/[redacted]" in line for line in lines), lines
    assert token not in caplog.text


def test_a_redact_for_a_customer_never_stored_keeps_their_suppression_as_a_digest(
    send, store, settings
):
    with transaction(store) as session:  # a bounce from a guest checkout's email
        session.add(Suppression(channel=Channel.EMAIL, address=EMAIL, reason="bounce"))
    send.shopify("customers/redact", _genuine("customers_redact_docs"))
    assert fulfil_pending(store, settings, now=NOW) == 1
    with store() as session:
        kept = session.scalars(select(Suppression)).one()
    assert kept.address.startswith("hmac:") and kept.reason == "bounce"
