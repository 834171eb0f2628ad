"""The processing DAG: how it is wired, and a real run with dag.test() on each database."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import AssetOrTimeSchedule
from project_paths import DAGS
from sqlalchemy import select

from postpurchase.airflow_glue import InboxWatermarkTrigger
from postpurchase.events import CanonicalEvent
from postpurchase.store.database import transaction
from postpurchase.store.models import InboxEvent, Touchpoint


@pytest.mark.airflow
def test_dag_is_woken_by_the_inbox_asset_and_backed_by_a_minute_schedule(airflow_db):
    bag = DagBag(dag_folder=str(DAGS / "process_purchase_events.py"))
    assert not bag.import_errors
    dag = bag.get_dag("process_purchase_events")

    assert (dag.max_active_runs, dag.catchup) == (1, False)
    assert "postpurchase" in dag.tags
    assert dag.doc_md and "Process purchase events" in dag.doc_md
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert (dag.timetable.timetable.expression, dag.timetable.timetable.timezone) == (
        "* * * * *",
        "UTC",
    )
    (asset,) = dag.timetable.asset_condition.objects
    assert asset.name == "postpurchase_inbox"
    assert isinstance(asset.watchers[0].trigger, InboxWatermarkTrigger)
    assert {t.task_id for t in dag.tasks} == {
        "drainers",
        "drain_inbox",
        "plan_followups",
        "look_up_products",
    }
    assert all(t.retries == 3 and t.owner == "postpurchase" for t in dag.tasks)


def _delivered(order_id: str) -> dict:
    return CanonicalEvent.model_validate(
        {
            "type": "order.delivered",
            "occurred_at": "2026-03-06T17:00:00+00:00",
            "order": {
                "external_id": order_id,
                "currency": "USD",
                "total": "80.00",
                "lines": [
                    {
                        "external_id": "l1",
                        "title": "Kettle",
                        "product_type": "appliances",
                        "quantity": 1,
                        "unit_price": "80.00",
                    }
                ],
                "customer": {"external_id": "c1", "email": "li@example.com"},
            },
        }
    ).as_payload()


def _touchpoints(store):
    with store() as session:
        return session.execute(
            select(
                Touchpoint.subject_key,
                Touchpoint.campaign_id,
                Touchpoint.step,
                Touchpoint.channel,
                Touchpoint.due_at,
                Touchpoint.status,
            ).order_by(Touchpoint.id)
        ).all()


@pytest.mark.airflow
def test_a_dag_run_processes_the_inbox_and_a_second_run_changes_nothing(store, run_dag):
    with transaction(store) as session:
        session.add_all(
            InboxEvent(
                source="shopify",
                dedupe_key=f"d{n}",
                event_type="order.delivered",
                payload=_delivered(str(n)),
            )
            for n in range(3)
        )
        session.add(
            InboxEvent(
                source="shopify", dedupe_key="bad", event_type="order.paid", payload={"x": 1}
            )
        )

    run_dag("process_purchase_events")
    first = _touchpoints(store)
    with transaction(store) as session:  # the same deliveries again, as a platform retry
        session.add_all(
            InboxEvent(
                source="shopify",
                dedupe_key=f"again{n}",
                event_type="order.delivered",
                payload=_delivered(str(n)),
            )
            for n in range(3)
        )
    run_dag("process_purchase_events")

    with store() as session:
        statuses = sorted(s.value for s in session.scalars(select(InboxEvent.status)))
    assert statuses == ["done"] * 6 + ["failed"]
    assert sorted((c, s) for _, c, s, *_ in first) == sorted(
        [
            ("delivery_checkin", 0),
            ("setup_tips", 0),
            ("review_request", 0),
            ("review_request", 1),
            ("nps_survey", 0),
        ]
        * 3
    )
    assert _touchpoints(store) == first


@pytest.mark.airflow
def test_an_idle_run_succeeds_and_its_note_is_one_line(store, run_dag):
    dag_run = run_dag("process_purchase_events")

    tis = dag_run.get_task_instances()
    assert {ti.state for ti in tis} == {"success"}
    last = next(ti for ti in tis if ti.task_id == "plan_followups")
    assert last.xcom_pull(task_ids="plan_followups") == "idle: inbox empty"
