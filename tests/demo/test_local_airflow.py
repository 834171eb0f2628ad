"""The local Airflow's trigger shortcut: a refusal is not an error, the schedule runs the DAG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.http_fake import FakeServer, Fault, Recorded, Reply

from postpurchase.demo.local_airflow import LocalAirflow


class FakeAirflowApi(FakeServer):
    """Airflow's public API as far as a trigger goes: a token, then a new DAG run."""

    def handle(self, request: Recorded) -> Reply:
        if request.path == "/auth/token":
            return Reply(201, json.dumps({"access_token": "t0ken"}).encode())
        return Reply(200, json.dumps({"dag_run_id": "manual__1", "state": "queued"}).encode())


@pytest.fixture
def api():
    server = FakeAirflowApi().start()
    yield server
    server.stop()


def _airflow(api: FakeAirflowApi, home: Path) -> LocalAirflow:
    return LocalAirflow(home, port=int(api.url.rsplit(":", 1)[1]), extra_env={})


def test_a_trigger_airflow_refuses_returns_false_and_the_next_one_goes_through(api, tmp_path):
    airflow = _airflow(api, tmp_path)
    # Airflow's SQLite database busy: the new DAG run is answered with a 500.
    api.fail_next(Fault(0), Fault(500, b'{"detail": "database is locked"}'))

    assert airflow.trigger("process_purchase_events") is False
    assert airflow.trigger("process_purchase_events") is True

    paths = [(r.method, r.path) for r in api.requests]
    # the token is fetched anew after a refusal, in case it was the token that had expired
    assert paths == [
        ("POST", "/auth/token"),
        ("POST", "/api/v2/dags/process_purchase_events/dagRuns"),
        ("POST", "/auth/token"),
        ("POST", "/api/v2/dags/process_purchase_events/dagRuns"),
    ]
    assert api.requests[-1].headers["Authorization"] == "Bearer t0ken"


def test_a_trigger_airflow_does_not_answer_returns_false(tmp_path):
    server = FakeAirflowApi().start()
    airflow = _airflow(server, tmp_path)
    server.stop()  # nothing listens any more

    assert airflow.trigger("dispatch_touchpoints") is False
