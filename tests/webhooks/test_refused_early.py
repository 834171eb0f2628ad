"""Routes refuse what they cannot use before reading it, and apply spooled opt-outs at start."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from deliveries import intake_settings
from fakes.fixtures import add_customer
from fastapi.testclient import TestClient

from postpurchase.settings import load_settings
from postpurchase.store.database import transaction
from postpurchase.store.models import ConsentState, Customer
from postpurchase.webhooks import opt_out_spool
from postpurchase.webhooks.app import create_app


@pytest.mark.parametrize(
    ("route", "unset"),
    [
        ("/webhooks/shopify", {"shopify_webhook_secret": None, "shopify_webhook_secrets": {}}),
        ("/webhooks/events", {"webhook_secret": None}),
    ],
)
def test_an_unconfigured_intake_route_answers_503_without_reading(db_url, store, route, unset):
    settings = intake_settings(db_url, **unset, webhook_max_body_bytes=1024)
    with TestClient(create_app(settings, session_factory=store)) as client:
        # Over the limit: a route that read the body first would answer 413.
        response = client.post(
            route, content=b"x" * 4096, headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]


def test_opt_outs_spooled_before_a_restart_are_applied_at_start(db_url, store):
    with transaction(store) as session:
        customer = add_customer(session, phone="+14155550123")
    opt_out_spool.keep(
        load_settings(),
        opt_out_spool.SMS_STOP,
        at=datetime.now(UTC),
        phone="+14155550123",
        source="sms:stop",
    )

    with TestClient(create_app()):
        pass

    assert opt_out_spool.pending(load_settings()) == []
    with store() as session:
        assert session.get(Customer, customer.id).sms_consent_state is ConsentState.DENIED
