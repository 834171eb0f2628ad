"""The dispatch DAG parses with no connections or settings, with its schedule and defaults."""

from __future__ import annotations

from project_paths import DAGS


def test_dispatch_dag_parses_and_is_thin():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "dispatch_touchpoints.py"))
    assert not bag.import_errors
    dag = bag.dags["dispatch_touchpoints"]
    assert dag.tags and "postpurchase" in dag.tags
    assert dag.doc_md and "Dispatch touchpoints" in dag.doc_md
    assert {t.task_id for t in dag.tasks} == {"claim", "send", "summarize"}
    assert all(t.retries == 3 and t.owner == "postpurchase" for t in dag.tasks)
    assert dag.schedule == "* * * * *"
