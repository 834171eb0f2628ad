from datetime import UTC, datetime, timedelta

import pytest

from postpurchase.store.database import transaction
from postpurchase.store.models import RejectedWebhook


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
