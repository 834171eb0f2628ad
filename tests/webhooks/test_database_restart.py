"""Intake on a PostgreSQL that restarts or drops its connections under the app.

A real PostgreSQL of the test's own is stopped while the app serves, then started again:
a webhook sent meanwhile is answered 503 (Shopify retries it) and stored by the retry, and
connections the server dropped are replaced without failing a webhook.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deliveries import Sender, fixture_bytes, inbox_rows, intake_settings
from fastapi.testclient import TestClient
from private_postgres import PrivatePostgres, private_postgres  # noqa: F401
from sqlalchemy import text

from postpurchase.settings import parse_database_url
from postpurchase.store import schema
from postpurchase.store.database import SessionFactory, make_engine, session_factory
from postpurchase.webhooks import group_commit
from postpurchase.webhooks.app import create_app

ORDER = "shopify/orders_create.json"


@pytest.fixture
def intake(
    private_postgres: PrivatePostgres,  # noqa: F811
) -> Iterator[tuple[Sender, SessionFactory, PrivatePostgres]]:
    engine = make_engine(parse_database_url(private_postgres.url), connect_timeout=2)
    schema.upgrade(engine)
    store = session_factory(engine)
    app = create_app(intake_settings(private_postgres.url), session_factory=store)
    with TestClient(app) as client:
        yield Sender(client), store, private_postgres
    engine.dispose()


def test_a_webhook_during_a_restart_is_refused_then_stored_by_its_retry(intake):
    send, store, server = intake
    assert send.shopify("orders/create", fixture_bytes(ORDER), event_id="warm").status_code == 202

    server.stop()
    refused = send.shopify("orders/create", fixture_bytes(ORDER), event_id="during")
    server.start()
    retried = send.shopify("orders/create", fixture_bytes(ORDER), event_id="during")

    assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
    assert retried.status_code == 202
    assert sorted(row.dedupe_key.rsplit(":", 1)[1] for row in inbox_rows(store)) == [
        "during",
        "warm",
    ]


def _terminate_the_apps_connections(store: SessionFactory) -> None:
    """End every other session of the database (the app's kept ones), waiting until they
    are gone: ``pg_terminate_backend`` alone returns before a backend has ended."""
    with store() as session:
        session.execute(
            text(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()


def test_connections_the_server_dropped_are_replaced_without_failing_a_webhook(intake):
    send, store, _server = intake
    assert send.shopify("orders/create", fixture_bytes(ORDER), event_id="one").status_code == 202
    _terminate_the_apps_connections(store)

    after = send.shopify("orders/create", fixture_bytes(ORDER), event_id="two")

    assert after.status_code == 202, after.text
    assert len(inbox_rows(store)) == 2


def test_a_connection_dropped_after_its_check_is_replaced_without_failing_a_webhook(
    intake, monkeypatch
):
    """The race the check cannot see: the backend ends between the check and the insert."""
    send, store, _server = intake
    assert send.shopify("orders/create", fixture_bytes(ORDER), event_id="one").status_code == 202
    monkeypatch.setattr(group_commit, "has_input", lambda _connection: False)
    _terminate_the_apps_connections(store)

    after = send.shopify("orders/create", fixture_bytes(ORDER), event_id="two")

    assert after.status_code == 202, after.text
    assert sorted(row.dedupe_key.rsplit(":", 1)[1] for row in inbox_rows(store)) == [
        "one",
        "two",
    ]
