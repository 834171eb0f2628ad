"""``airflow standalone`` under var/: started, waited for, driven over REST, and stopped.

Used by ``make run``. Airflow's children were seen to linger long after SIGTERM, and task
processes leave standalone's process group: the whole tree is stopped, with a KILL after a
grace period (``processes.ProcessTree``). Airflow's defaults (parallelism 32: LocalExecutor
forks that many workers at once) are sized for a server; here they follow the machine.

Its components share one SQLite metadata database, put in write-ahead-log mode before they
start (``prepare_metadata``): in SQLite's default mode a reader's open transaction blocks
every writer, and a scheduler or triggerer that waited the driver's 5 s for the lock stopped
on "database is locked" for good. In WAL mode readers never block the one writer.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx

from postpurchase.airflow_glue.rest import AirflowApi
from postpurchase.demo.processes import ProcessTree
from postpurchase.exceptions import PostpurchaseError
from postpurchase.settings import PROJECT_ROOT

# The components whose heartbeats Airflow's health check reads: its name for each, and theirs.
_COMPONENTS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag_processor": "dag-processor"}


class AirflowNotReady(PostpurchaseError):
    """Airflow did not come up; the message points at its log."""


def parallelism(cpus: int | None = None) -> int:
    """Task slots for a local Airflow: two per core (tasks mostly wait on the database and
    providers), at least 4 so a dispatch run's mapped chunks overlap, at most Airflow's 32."""
    cores = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(4, min(32, 2 * cores))


class LocalAirflow:
    def __init__(self, home: Path, *, port: int = 8080, extra_env: dict[str, str]) -> None:
        self.home = home
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        # Airflow's log servers (8793, 8794 by default) move with the UI's port, so a second
        # local Airflow on another port does not collide with the first.
        self.log_ports = (port + 713, port + 714)
        self.log_path = home / "standalone.log"
        self.metadata_path = home / "airflow.db"
        self._extra_env = extra_env
        self._tree: ProcessTree | None = None
        self._client: AirflowApi | None = None
        self._unhealthy_since: dict[str, float] = {}  # component: when first seen unhealthy

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.metadata_path}",
            AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT_ROOT / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            # task processes reach Airflow through this; its default assumes port 8080
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base_url}/execution/",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            # LocalExecutor forks `parallelism` workers up front: 32 on a 2-core box is
            # gigabytes of idle processes
            AIRFLOW__CORE__PARALLELISM=str(parallelism()),
            AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=str(min(2, os.cpu_count() or 1)),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(self.log_ports[0]),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(self.log_ports[1]),
            NO_PROXY="127.0.0.1,localhost",
            # tasks write their run's note through the public API with this
            AIRFLOW_CONN_POSTPURCHASE_AIRFLOW_API=json.dumps(
                {
                    "conn_type": "http",
                    "host": self.base_url,
                    "login": "admin",
                    "password": self.admin_password(),
                }
            ),
            # standalone starts its components as `airflow ...`: this environment's first
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        env.update(self._extra_env)
        return env

    def start(self) -> None:
        with httpx.Client() as client:
            try:
                client.get(self.base_url, timeout=1)
            except httpx.HTTPError:
                pass
            else:
                raise AirflowNotReady(
                    f"port {self.port} on 127.0.0.1 is already in use: stop what runs there "
                    "(an earlier 'make run'?) and try again"
                )
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare_metadata()
        airflow = Path(sys.executable).with_name("airflow")
        self._tree = ProcessTree(
            [str(airflow), "standalone"], env=self.env(), log_path=self.log_path
        )
        self._tree.start()

    def prepare_metadata(self) -> None:
        """Put Airflow's SQLite database (made empty if new: ``airflow standalone`` migrates
        it) in WAL mode, which the file keeps for every later connection."""
        try:
            # nothing else should have it open: a short wait for a lock, not the driver's 5 s
            with closing(sqlite3.connect(self.metadata_path, timeout=1)) as db:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.Error as exc:
            mode = str(exc)
        if mode != "wal":
            raise AirflowNotReady(
                f"{self.metadata_path} could not be put in SQLite's WAL mode ({mode}): is a "
                "process of an earlier 'make run' still using it?"
            )

    def wait_ready(self, *, timeout: float, tick: Callable[[], None]) -> None:
        """Wait until the API server and the mounted webhook app both answer."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self._tree is not None and self._tree.exited():
                    raise AirflowNotReady(f"airflow standalone exited; see {self.log_path}")
                try:
                    version = client.get(f"{self.base_url}/api/v2/version")
                    health = client.get(f"{self.base_url}/postpurchase/webhooks/health")
                    if version.status_code == 200 and health.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                tick()
                time.sleep(1)
        raise AirflowNotReady(f"Airflow was not ready after {timeout:.0f} s; see {self.log_path}")

    def stopped(self, *, for_seconds: float) -> list[str]:
        """The components (``scheduler``, ``triggerer``, ``dag-processor``) Airflow's health
        check has reported unhealthy (no heartbeat within its threshold) at every look for
        ``for_seconds`` or more: ``airflow standalone`` does not start a component again once
        it stopped. A look the API does not answer changes nothing."""
        try:
            health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            health = None
        now = time.monotonic()
        if isinstance(health, dict):
            unhealthy = [
                name
                for key, name in _COMPONENTS.items()
                if (health.get(key) or {}).get("status") == "unhealthy"
            ]
            self._unhealthy_since = {n: self._unhealthy_since.get(n, now) for n in unhealthy}
        return [n for n, since in self._unhealthy_since.items() if now - since >= for_seconds]

    def admin_password(self) -> str:
        """The UI's admin password, chosen here on the first start and kept under var/.

        Chosen before Airflow starts (its simple auth manager keeps the passwords it finds in
        this file), so the tasks' run-note connection can carry it.
        """
        generated = self.home / "simple_auth_manager_passwords.json.generated"
        passwords: dict[str, str] = json.loads(generated.read_text()) if generated.exists() else {}
        if "admin" not in passwords:
            passwords["admin"] = secrets.token_urlsafe(12)
            self.home.mkdir(parents=True, exist_ok=True)
            generated.write_text(json.dumps(passwords))
        return passwords["admin"]

    def trigger(self, dag_id: str) -> bool:
        """Start a run of ``dag_id`` now instead of waiting for its schedule; False when
        Airflow did not take it (busy, or a passing error): the schedule runs the DAG anyway,
        so the caller only tries again later."""
        try:
            self._api().trigger_run(dag_id)
        except httpx.HTTPError:
            self._client = None  # an expired token is fetched anew next time
            return False
        return True

    def _api(self) -> AirflowApi:
        if self._client is None:
            self._client = AirflowApi(self.base_url, "admin", self.admin_password())
        return self._client

    def stop(self, *, grace: float = 15) -> None:
        """Stop standalone and every process under it (SIGTERM, then SIGKILL after ``grace``)."""
        if self._tree is not None:
            self._tree.stop(grace=grace)
