from datetime import UTC, datetime, timedelta

import pytest

from postpurchase.store.database import transaction
from postpurchase.store.models import RejectedWebhook
from postpurchase.tasks.housekeeping import prune_rejected_webhooks


def _reject(session, *, received_at, reason="bad signature"):
    session.add(
        RejectedWebhook(
            received_at=received_at,
            route="/webhooks/shopify",
            status_code=401,
            reason=reason,
            headers={"X-Shopify-Topic": "orders/create"},
            body_excerpt='{"id": 1}',
        )
    )


@pytest.mark.airflow
def test_housekeeping_dag_prunes_old_rejections(store, run_dag):
    now = datetime.now(UTC)
    with transaction(store) as session:
        _reject(session, received_at=now - timedelta(days=30), reason="old")
        _reject(session, received_at=now - timedelta(hours=1), reason="recent")

    run_dag("housekeeping")

    with store() as session:
        reasons = [r.reason for r in session.query(RejectedWebhook)]
    assert reasons == ["recent"]


def test_pruning_keeps_the_newest_rows_within_the_cap_and_is_repeatable(store):
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    with transaction(store) as session:
        for minutes in range(10, 0, -1):  # oldest first
            _reject(session, received_at=now - timedelta(minutes=minutes), reason=f"{minutes}m")

    with transaction(store) as session:
        pruned = prune_rejected_webhooks(session, now=now, retention=timedelta(days=14), cap=3)
    with transaction(store) as session:
        again = prune_rejected_webhooks(session, now=now, retention=timedelta(days=14), cap=3)

    assert (pruned, again) == (7, 0)
    with store() as session:
        kept = [r.reason for r in session.query(RejectedWebhook).order_by(RejectedWebhook.id)]
    assert kept == ["3m", "2m", "1m"]
