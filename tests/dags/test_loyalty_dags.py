from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from project_paths import DAGS
from sqlalchemy import select

from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Customer,
    CustomerTier,
    InboxEvent,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
)


def _customer_with_order(session, external_id, total, paid_at):
    customer = Customer(
        source="shopify", external_id=external_id, email=f"{external_id}@example.com"
    )
    session.add(customer)
    session.flush()
    session.add(
        Order(
            source="shopify",
            external_id=f"o-{external_id}",
            customer_id=customer.id,
            currency="USD",
            subtotal=Decimal(total),
            total=Decimal(total),
            paid_at=paid_at,
        )
    )
    session.flush()
    return customer


@pytest.mark.airflow
def test_loyalty_dags_parse_with_their_schedule_and_defaults(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    refresh = bag.get_dag("refresh_segments")
    maintenance = bag.get_dag("loyalty_maintenance")
    assert refresh.timetable.expression == "30 2 * * *"  # tiers.refresh_cron in the config
    for dag in (refresh, maintenance):
        assert "loyalty" in dag.tags and dag.doc_md
        assert all(task.retries == 3 for task in dag.tasks)


@pytest.mark.airflow
def test_refresh_segments_dag_moves_a_big_spender_up(store, run_dag):
    now = datetime.now(UTC)
    with transaction(store) as session:
        gold = _customer_with_order(session, "9001", "800.00", now - timedelta(days=3))
        _customer_with_order(session, "9002", "20.00", now - timedelta(days=3))
        for n in range(2):  # Gold needs three orders (config/loyalty.yaml)
            session.add(
                Order(
                    source="shopify",
                    external_id=f"o-9001-{n}",
                    customer_id=gold.id,
                    currency="USD",
                    subtotal=Decimal("10"),
                    total=Decimal("10"),
                    paid_at=now - timedelta(days=10 + n),
                )
            )

    run_dag("refresh_segments")

    with store() as session:
        tiers = dict(session.execute(select(CustomerTier.customer_id, CustomerTier.tier)).all())
        assert tiers[gold.id] == "Gold"
        assert sorted(tiers.values()) == ["Bronze", "Gold"]
        events = session.scalars(select(InboxEvent)).all()
        assert [(e.event_type, e.subject_id) for e in events] == [("tier.changed", "9001")]


@pytest.mark.airflow
def test_loyalty_maintenance_dag_expires_old_points(store, run_dag):
    now = datetime.now(UTC)
    with transaction(store) as session:
        customer = _customer_with_order(session, "9100", "70.00", now - timedelta(days=400))
        order_id = session.scalar(select(Order.id).where(Order.customer_id == customer.id))
        session.add(
            LoyaltyLedgerEntry(
                customer_id=customer.id,
                order_id=order_id,
                kind=LedgerKind.AWARD,
                points=70,
                cause=f"award:order:{order_id}",
                expires_at=now - timedelta(days=35),
            )
        )

    run_dag("loyalty_maintenance")

    with store() as session:
        rows = session.execute(
            select(LoyaltyLedgerEntry.kind, LoyaltyLedgerEntry.points).order_by(
                LoyaltyLedgerEntry.id
            )
        ).all()
        assert rows == [(LedgerKind.AWARD, 70), (LedgerKind.EXPIRY, -70)]
