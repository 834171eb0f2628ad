"""``airflow standalone`` under var/: started, waited for, driven over REST, and stopped.

Used by ``make run``. Airflow's children were seen to linger long after SIGTERM, so the whole
process group is stopped, with a KILL after a grace period.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from postpurchase.exceptions import PostpurchaseError
from postpurchase.settings import PROJECT_ROOT


class AirflowNotReady(PostpurchaseError):
    """Airflow did not come up; the message points at its log."""


class LocalAirflow:
    def __init__(self, home: Path, *, port: int = 8080, extra_env: dict[str, str]) -> None:
        self.home = home
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = home / "standalone.log"
        self._extra_env = extra_env
        self._process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT_ROOT / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            # task processes reach Airflow through this; its default assumes port 8080
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base_url}/execution/",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
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
        airflow = Path(sys.executable).with_name("airflow")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(airflow), "standalone"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
            )

    def wait_ready(self, *, timeout: float, tick: Callable[[], None]) -> None:
        """Wait until the API server and the mounted webhook app both answer."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
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
            self._post_run(dag_id)
        except httpx.HTTPError:
            self._token = None  # an expired token is fetched anew next time
            return False
        return True

    def _post_run(self, dag_id: str) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            if self._token is None:
                answer = client.post(
                    "/auth/token", json={"username": "admin", "password": self.admin_password()}
                )
                answer.raise_for_status()
                self._token = answer.json()["access_token"]
            client.post(
                f"/api/v2/dags/{dag_id}/dagRuns",
                json={"logical_date": None},
                headers={"Authorization": f"Bearer {self._token}"},
            ).raise_for_status()

    def stop(self, *, grace: float = 15) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        pgid = os.getpgid(self._process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self._process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        try:  # children outlive the standalone parent: end the whole group
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.wait()
