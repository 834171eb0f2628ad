"""The same engine on Airflow's distributed executor: real processes, Celery, Redis, PostgreSQL."""

import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.airflow]


def _wait_for_run(cluster, dag_id, run_id, timeout=180):
    deadline = time.monotonic() + timeout
    state = "queued"
    while time.monotonic() < deadline:
        state = cluster.run_state(dag_id, run_id)
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    raise AssertionError(
        f"{dag_id} still {state} after {timeout} s\n{cluster.log_tail('worker-1')}"
    )


def test_a_dag_runs_on_a_celery_worker(cluster_factory):
    cluster = cluster_factory({})
    run_id = cluster.trigger("housekeeping")
    assert _wait_for_run(cluster, "housekeeping", run_id) == "success"
