"""The measure_outcomes DAG: hourly, thin, and its run refreshes the outcome tables."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from project_paths import DAGS
from sqlalchemy import select

from postpurchase.store.database import transaction
from postpurchase.store.models import (
    CampaignDay,
    Channel,
    Customer,
    Order,
    OutcomeSnapshot,
    Touchpoint,
    TouchpointStatus,
)


@pytest.mark.airflow
def test_measure_outcomes_parses_hourly_with_the_shared_defaults(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    dag = bag.get_dag("measure_outcomes")
    assert dag.timetable.expression == "0 * * * *"
    assert "outcomes" in dag.tags and "Measure outcomes" in dag.doc_md
    assert all(task.retries == 3 for task in dag.tasks)


@pytest.mark.airflow
def test_a_run_refreshes_the_funnel_and_the_kpis(store, run_dag):
    now = datetime.now(UTC)
    with transaction(store) as session:
        customer = Customer(source="shopify", external_id="77", email="ana@example.com")
        session.add(customer)
        session.flush()
        session.add(
            Order(
                source="shopify",
                external_id="o77",
                customer_id=customer.id,
                currency="USD",
                total=Decimal("42.00"),
                paid_at=now - timedelta(days=2),
            )
        )
        session.add(
            Touchpoint(
                subject_key="order:o77",
                campaign_id="review_request",
                channel=Channel.EMAIL,
                customer_id=customer.id,
                due_at=now - timedelta(days=1),
                sent_at=now - timedelta(days=1),
                status=TouchpointStatus.SENT,
                arm="treatment",
            )
        )

    run_dag("measure_outcomes")

    with store() as session:
        day = session.scalars(select(CampaignDay)).one()
        assert (day.campaign_id, day.planned, day.sent) == ("review_request", 1, 1)
        assert session.get(OutcomeSnapshot, "kpis").data["customers"] == 1
