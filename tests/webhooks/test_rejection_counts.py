"""A flood of refused requests costs a few writes and cannot hide a real failure."""

from __future__ import annotations

import string

from deliveries import Sender, intake_settings, rejected_rows
from fastapi.testclient import TestClient
from sent_statements import statements_sent

from postpurchase.store.database import engine_of
from postpurchase.webhooks.app import create_app
from postpurchase.webhooks.rejections import KINDS_PER_HOUR, OTHER_REASONS, SAMPLES_KEPT


def _writes_to_rejections(store):
    """The INSERT and UPDATE statements of rejected_webhooks the app's engine sends while
    inside."""
    return statements_sent(
        engine_of(store),
        lambda statement: (
            "rejected_webhooks" in statement
            and statement.lstrip().upper().startswith(("INSERT", "UPDATE"))
        ),
    )


def test_a_flood_of_unsigned_posts_is_one_counted_row(db_url, store):
    with (
        _writes_to_rejections(store) as writes,
        TestClient(create_app(intake_settings(db_url), session_factory=store)) as client,
    ):
        sender = Sender(client)
        answers = {
            sender.shopify("orders/create", b"{}", secret="x").status_code for _ in range(60)
        }

    assert answers == {401}
    [row] = rejected_rows(store)
    assert (row.route, row.status_code, row.count) == ("/webhooks/shopify", 401, 60)
    assert len(row.samples) == SAMPLES_KEPT
    assert row.last_seen_at >= row.received_at
    # The first few write their sample; the rest are counted in memory and written together.
    assert len(writes) <= SAMPLES_KEPT + 2


def test_varied_reasons_cannot_multiply_rows_or_hide_a_signature_failure(db_url, store):
    settings = intake_settings(db_url)
    with TestClient(create_app(settings, session_factory=store)) as client:
        sender = Sender(client)
        for letter in string.ascii_letters:  # 52 kinds of "Content-Type must be ..."
            headers = {"Content-Type": f"text/{letter}"}
            assert sender.shopify("orders/create", b"{}", headers=headers).status_code == 415
        real = sender.shopify("orders/create", b"{}", secret="the old secret")

    assert real.status_code == 401
    rows = rejected_rows(store)
    unsupported = [r for r in rows if r.status_code == 415]
    assert len(unsupported) == KINDS_PER_HOUR + 1
    assert sum(r.count for r in unsupported) == 52
    assert [r.reason for r in unsupported][-1] == OTHER_REASONS
    [signature] = [r for r in rows if r.status_code == 401]
    assert "does not match" in signature.reason and signature.count == 1
