"""Migration 0007 turns the old consent booleans into states without inventing a "no"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from old_schemas import DIALECTS, engine_at
from sqlalchemy import Engine, text

from postpurchase.store import schema


@pytest.fixture(params=DIALECTS)
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty engine database migrated only to 0005, the schema before consent states."""
    with engine_at(
        request.param, "0005", tmp_path=tmp_path, name="consent_migration_test"
    ) as engine:
        yield engine


def _customer(conn, external_id, email, phone, email_yes, sms_yes, sms_marketing_yes):
    conn.execute(
        text(
            "INSERT INTO customers (source, external_id, email, phone, email_marketing_consent,"
            " sms_consent, sms_marketing_consent, source_updated_at) VALUES ('shopify', :id,"
            " :email, :phone, :e, :s, :m, :updated)"
        ),
        {
            "id": external_id,
            "email": email,
            "phone": phone,
            "e": email_yes,
            "s": sms_yes,
            "m": sms_marketing_yes,
            "updated": datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        },
    )


def test_true_is_granted_false_is_unknown_unless_a_suppression_says_no(old_engine):
    stop_at = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
    with old_engine.begin() as conn:
        _customer(conn, "subscribed", "ana@example.org", "+14155550101", True, True, True)
        _customer(conn, "never-asked", "ben@example.org", "+14155550102", False, False, False)
        _customer(conn, "unsubscribed", "Cleo@Example.org", "+14155550103", False, False, False)
        _customer(conn, "bounced", "dora@example.org", None, False, False, False)
        for channel, address, reason, lifted in (
            ("email", "cleo@example.org", "unsubscribe", None),
            ("sms", "+14155550103", "stop", None),
            ("email", "dora@example.org", "bounce", None),  # undeliverable is not a "no"
            ("sms", "+14155550102", "stop", stop_at),  # lifted by a START: no evidence
        ):
            conn.execute(
                text(
                    "INSERT INTO suppressions (channel, address, reason, source, created_at,"
                    " lifted_at) VALUES (:c, :a, :r, 'test', :at, :lifted)"
                ),
                {"c": channel, "a": address, "r": reason, "at": stop_at, "lifted": lifted},
            )

    schema.upgrade(old_engine)

    with old_engine.connect() as conn:
        states = {
            row.external_id: (
                row.email_marketing_consent_state,
                row.sms_consent_state,
                row.sms_marketing_consent_state,
            )
            for row in conn.execute(text("SELECT * FROM customers"))
        }
        trail = conn.execute(
            text(
                "SELECT c.external_id, t.purpose, t.from_state, t.to_state, t.source"
                " FROM consent_changes t JOIN customers c ON c.id = t.customer_id"
                " ORDER BY c.external_id, t.purpose"
            )
        ).all()
        columns = {
            row[0]
            for row in conn.execute(text("SELECT * FROM customers LIMIT 0")).cursor.description
        }
    assert states == {
        "subscribed": ("granted", "granted", "granted"),
        "never-asked": ("unknown", "unknown", "unknown"),
        "unsubscribed": ("denied", "denied", "denied"),
        "bounced": ("unknown", "unknown", "unknown"),
    }
    assert [tuple(row) for row in trail] == [
        ("subscribed", "email_marketing", "unknown", "granted", "migration"),
        ("subscribed", "sms", "unknown", "granted", "migration"),
        ("subscribed", "sms_marketing", "unknown", "granted", "migration"),
        ("unsubscribed", "email_marketing", "unknown", "denied", "migration"),
        ("unsubscribed", "sms", "unknown", "denied", "migration"),
        ("unsubscribed", "sms_marketing", "unknown", "denied", "migration"),
    ]
    assert "email_marketing_consent" not in columns  # the booleans are gone
