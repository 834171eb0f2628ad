"""Every DAG file parses fast, cleanly and without side effects, and tells ops what it does."""

import json
import os
import subprocess
import sys

import pytest
from project_paths import DAGS

DAG_FILES = sorted(p.name for p in DAGS.glob("*.py"))

# Parsing runs in a fresh interpreter with no connections, variables or engine database
# reachable; it reports import errors, what it loaded and whether any database file appeared.
_PARSE = """
import json, sys
import airflow.sdk  # loaded before timing starts, as in a running dag-processor
from airflow.configuration import conf
conf.set("core", "dagbag_import_timeout", "1")  # Airflow's own limit: under a second per file
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "tags": sorted(dag.tags),
            "doc_md": bool((dag.doc_md or "").strip()),
            "tasks": {
                t.task_id: {"owner": t.owner, "retries": t.retries} for t in dag.tasks
            },
        }
        for dag_id, dag in bag.dags.items()
    },
    "loaded": sorted(
        m for m in sys.modules
        if m.split(".")[0] in {"sendgrid", "twilio", "psycopg"}
        or m == "postpurchase.store.database"
    ),
}))
"""


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    home = tmp_path_factory.mktemp("parse")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "POSTPURCHASE_"))
    }
    env.update(
        AIRFLOW_HOME=str(home / "airflow"),
        # Both databases point where nothing answers: parsing must not need either.
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/no-such-dir/airflow.db",
        POSTPURCHASE_DATABASE_URL=f"sqlite:///{home}/engine/must-not-exist.db",
    )
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, str(DAGS)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["engine_db_created"] = (home / "engine").exists()
    return report


def test_there_are_dags(parsed):
    assert DAG_FILES
    assert len(parsed["dags"]) >= len(DAG_FILES)


def test_every_file_imports_without_error(parsed):
    assert parsed["errors"] == {}


def test_parsing_loads_no_provider_sdk_and_opens_no_database(parsed):
    assert parsed["loaded"] == []
    assert parsed["engine_db_created"] is False


def test_every_dag_explains_itself_and_is_tagged(parsed):
    for dag_id, dag in parsed["dags"].items():
        assert "postpurchase" in dag["tags"], dag_id
        assert dag["doc_md"], f"{dag_id} has no doc_md for the Airflow UI"


def test_every_task_has_an_owner_and_retries(parsed):
    for dag_id, dag in parsed["dags"].items():
        for task_id, task in dag["tasks"].items():
            assert task["owner"] == "postpurchase", f"{dag_id}.{task_id}"
            assert task["retries"] >= 1, f"{dag_id}.{task_id}"
