"""The distributed setup run by hand: Airflow's API server, scheduler, dag-processor,
triggerer and Celery workers, with Redis as broker and PostgreSQL for Airflow's metadata and
the engine's database (what docker-compose.yml runs, without a Docker engine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from project_paths import DAGS, ROOT
from servers import free_port

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
POSTPURCHASE = str(Path(sys.executable).with_name("postpurchase"))


class AirflowCluster:
    def __init__(
        self, workdir: Path, *, airflow_db: str, engine_db: str, redis_db: int, env: dict[str, str]
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        # psycopg 3 for Airflow too (sync and async engines), so no other driver is needed
        airflow_url = airflow_db.replace("postgresql://", "postgresql+psycopg://", 1)
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "POSTPURCHASE_"))
        }
        self.env.update(
            AIRFLOW_HOME=str(workdir / "home"),
            AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base_url}/execution/",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow_url,
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=airflow_url,
            AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}",
            # A queue of its own: no other Celery worker on this Redis can take its tasks.
            AIRFLOW__OPERATORS__DEFAULT_QUEUE=f"postpurchase-e2e-{uuid.uuid4().hex[:12]}",
            AIRFLOW__CELERY__RESULT_BACKEND=f"db+{airflow_url}",
            AIRFLOW__API_AUTH__JWT_SECRET="e2e-" + "x" * 40,
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            # a killed worker's task is noticed in seconds, not the default five minutes
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
            # tasks write their run's note through the public API, as in production
            AIRFLOW_CONN_POSTPURCHASE_AIRFLOW_API=json.dumps(
                {"conn_type": "http", "host": self.base_url, "login": "admin", "password": "admin"}
            ),
            POSTPURCHASE_DATABASE_URL=engine_db,
            POSTPURCHASE_SIGNING_SECRET="e2e-links-" + "s" * 40,  # shared by every process
            POSTPURCHASE_VAR_DIR=str(workdir / "var"),
            NO_PROXY="127.0.0.1,localhost",
        )
        self.env.update(env)

    def migrate(self) -> None:
        """Migrate Airflow's metadata database and the engine's, as docker-compose's init does."""
        for command in ([AIRFLOW, "db", "migrate"], [POSTPURCHASE, "db", "upgrade"]):
            subprocess.run(command, env=self.env, check=True, capture_output=True, timeout=300)

    def start(self, name: str, *args: str) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [AIRFLOW, *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_all(self) -> None:
        self.start("api-server", "api-server", "--port", str(self.port))
        self.start("scheduler", "scheduler")
        self.start("dag-processor", "dag-processor")
        self.start("triggerer", "triggerer")
        self.start("worker-1", "celery", "worker", "--concurrency", "4")

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log_tail(name)}")
            try:
                if httpx.get(f"{self.base_url}/postpurchase/webhooks/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"API server not ready:\n{self.log_tail('api-server')}")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self, name: str) -> None:
        """SIGKILL a component and everything it started, as a crash would."""
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for name in list(self.processes):
            process = self.processes[name]
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self.kill(name)

    def api(self) -> httpx.Client:
        if self._token is None:
            answer = httpx.post(
                f"{self.base_url}/auth/token", json={"username": "admin", "password": "admin"}
            )
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return httpx.Client(
            base_url=f"{self.base_url}/api/v2",
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=30,
        )

    def run_state(self, dag_id: str, run_id: str) -> str:
        with self.api() as client:
            answer = client.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            answer.raise_for_status()
            return str(answer.json()["state"])

    def notes(self, dag_id: str) -> list[str]:
        """The notes of the DAG's runs, newest first (runs without one left out)."""
        with self.api() as client:
            answer = client.get(f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after"})
            answer.raise_for_status()
            return [run["note"] for run in answer.json()["dag_runs"] if run["note"]]

    def trigger(self, dag_id: str) -> str:
        with self.api() as client:
            answer = client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
            answer.raise_for_status()
            return str(answer.json()["dag_run_id"])
