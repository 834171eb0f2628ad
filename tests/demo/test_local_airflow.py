"""The local Airflow of ``make run``: its SQLite database where readers do not hold up the
writer, the trigger shortcut (a refusal is not an error, the schedule runs the DAG), and how a
component of Airflow that stopped is told from one that missed a heartbeat."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fakes.http_fake import FakeServer, Fault, Recorded, Reply

from postpurchase.cli import run as run_command
from postpurchase.demo.local_airflow import LocalAirflow
from postpurchase.exceptions import PostpurchaseError


def _health(scheduler: str, triggerer: str = "healthy") -> dict[str, Any]:
    """``GET /api/v2/monitor/health`` as Airflow 3.3's ``airflow standalone`` answered it
    (airflow/api/common/airflow_health.py builds it), with the statuses given."""
    beat = "2026-12-06T22:29:00.394014+00:00"
    return {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": scheduler, "latest_scheduler_heartbeat": beat},
        "triggerer": {"status": triggerer, "latest_triggerer_heartbeat": beat},
        "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": beat},
    }


class FakeAirflowApi(FakeServer):
    """Airflow's public API as far as a trigger and the health check go: a token, then a new
    DAG run; the health of its components, as ``health`` says."""

    health = _health("healthy")

    def handle(self, request: Recorded) -> Reply:
        if request.path == "/auth/token":
            return Reply(201, json.dumps({"access_token": "t0ken"}).encode())
        if request.path == "/api/v2/monitor/health":
            return Reply(200, json.dumps(self.health).encode())
        return Reply(200, json.dumps({"dag_run_id": "manual__1", "state": "queued"}).encode())


@pytest.fixture
def api():
    server = FakeAirflowApi().start()
    yield server
    server.stop()


def _airflow(api: FakeAirflowApi, home: Path) -> LocalAirflow:
    return LocalAirflow(home, port=int(api.url.rsplit(":", 1)[1]), extra_env={})


def test_airflow_s_database_takes_a_write_while_another_component_reads(tmp_path):
    # An earlier run's database, in SQLite's default mode, as a component left it.
    airflow = LocalAirflow(tmp_path, extra_env={})
    with closing(sqlite3.connect(airflow.metadata_path)) as db:
        db.execute("CREATE TABLE job (id INTEGER PRIMARY KEY, latest_heartbeat TEXT)")
        db.execute("INSERT INTO job VALUES (1, '2026-12-07T02:00:00')")
        db.commit()

    airflow.prepare_metadata()

    assert airflow.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{airflow.metadata_path}"
    )
    # The API server in the middle of a read; the scheduler writes its heartbeat meanwhile,
    # without a wait (in the default mode its commit fails: "database is locked").
    with (
        closing(sqlite3.connect(airflow.metadata_path, isolation_level=None)) as reader,
        closing(sqlite3.connect(airflow.metadata_path, timeout=0)) as scheduler,
    ):
        reader.execute("BEGIN")
        assert reader.execute("SELECT latest_heartbeat FROM job").fetchone() == (
            "2026-12-07T02:00:00",
        )
        scheduler.execute("UPDATE job SET latest_heartbeat = '2026-12-07T02:00:05'")
        scheduler.commit()
        # the reader goes on seeing the database as its transaction began
        assert reader.execute("SELECT latest_heartbeat FROM job").fetchone() == (
            "2026-12-07T02:00:00",
        )
        reader.execute("COMMIT")
        assert reader.execute("SELECT latest_heartbeat FROM job").fetchone() == (
            "2026-12-07T02:00:05",
        )


def test_a_database_another_process_holds_is_refused_with_its_path(tmp_path):
    airflow = LocalAirflow(tmp_path, extra_env={})
    with closing(sqlite3.connect(airflow.metadata_path, isolation_level=None)) as other:
        other.execute("CREATE TABLE job (id INTEGER PRIMARY KEY)")
        other.execute("BEGIN")
        other.execute("SELECT * FROM job").fetchall()

        with pytest.raises(PostpurchaseError) as raised:
            airflow.prepare_metadata()

    assert str(airflow.metadata_path) in str(raised.value)
    assert "database is locked" in str(raised.value)
    assert "still using it?" in str(raised.value)


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


def test_a_component_is_stopped_once_unhealthy_at_every_look_for_long_enough(api, tmp_path):
    airflow = _airflow(api, tmp_path)
    assert airflow.stopped(for_seconds=0) == []

    api.health = _health("unhealthy", triggerer="unhealthy")
    # unhealthy at one look only: a heartbeat missed on a busy machine
    assert airflow.stopped(for_seconds=60) == []
    assert airflow.stopped(for_seconds=0) == ["scheduler", "triggerer"]

    api.health = _health("healthy", triggerer="unhealthy")
    assert airflow.stopped(for_seconds=0) == ["triggerer"]


def test_a_look_the_api_does_not_answer_changes_nothing(tmp_path):
    server = FakeAirflowApi().start()
    airflow = _airflow(server, tmp_path)
    server.health = _health("unhealthy")
    assert airflow.stopped(for_seconds=0) == ["scheduler"]
    server.stop()

    assert airflow.stopped(for_seconds=0) == ["scheduler"]


def test_the_run_stops_waiting_for_work_once_a_component_stopped(api, tmp_path, store, monkeypatch):
    # Nothing processed yet (no tier given): the run would wait for the work until its
    # timeout; with the scheduler stopped, none of it would ever be done.
    api.health = _health("unhealthy")
    monkeypatch.setattr(run_command, "_STOPPED_FOR", 0)
    airflow = _airflow(api, tmp_path)

    with pytest.raises(PostpurchaseError) as stopped:
        run_command._drain(airflow, store, timeout=300)

    message = str(stopped.value)
    assert message.startswith("Airflow's scheduler stopped (no heartbeat for over 0 s)")
    assert str(airflow.log_path) in message
