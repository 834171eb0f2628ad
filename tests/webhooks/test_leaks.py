"""What the app must never show: a database password, customers' data in SQL errors."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from postpurchase.store.database import transaction
from postpurchase.store.models import Customer
from postpurchase.webhooks.app import create_app

PASSWORD = "Sup3r-s3cret"
MALFORMED = [
    f"postgresql://shop:{PASSWORD}@db:port/postpurchase",  # a port that is not a number
    f"postgresql//shop:{PASSWORD}@db/postpurchase",  # no ':' after the scheme
    f"postgresql://shop:{PASSWORD}@db:5432",  # no database
    f"mysql://shop:{PASSWORD}@db/postpurchase",
]


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_database_url_never_shows_its_password(url, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", url)
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path))
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        answers = [
            client.post("/webhooks/events", content=b"{}"),
            client.post("/webhooks/sendgrid/events", content=b"[]"),
            client.post("/webhooks/twilio/inbound", content=b"Body=STOP"),
            client.get("/u/token"),
            client.post("/s/token"),
        ]

    assert [a.status_code for a in answers] == [503] * 5
    assert all(PASSWORD not in a.text for a in answers)
    assert caplog.records and PASSWORD not in caplog.text


def test_sql_errors_do_not_carry_the_rows_values(store):
    email = "private.person@example.org"
    row = {"source": "shopify", "external_id": "c1", "email": email}
    with transaction(store) as session:
        session.execute(insert(Customer).values(**row))
    with pytest.raises(IntegrityError) as caught, transaction(store) as session:
        session.execute(insert(Customer).values(**row))  # the same customer twice

    assert email not in str(caught.value)
