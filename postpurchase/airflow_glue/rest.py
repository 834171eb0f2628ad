"""The one client of Airflow's public REST API (v2): a token from ``/auth/token``, then calls.

Run notes (a task cannot set its run's note in Airflow 3.3, only the API can) and the local
demo's "start a run now" both go through it. Errors are httpx's: ``HTTPStatusError`` for a
refusal or a server error, ``TransportError`` when the API server is not reachable.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class AirflowApi:
    """An API server at ``base_url`` (``http://airflow-apiserver:8080``) as ``username``.

    The token is fetched on the first call and kept; ``forget_token`` drops it after a
    failure, so an expired one is fetched anew next time.
    """

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 10):
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._timeout = timeout
        self._token: str | None = None

    def forget_token(self) -> None:
        self._token = None

    def set_run_note(self, dag_id: str, run_id: str, note: str) -> None:
        """PATCH the note of one DAG run."""
        path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        self._call("PATCH", path, params={"update_mask": "note"}, json={"note": note})

    def trigger_run(self, dag_id: str) -> None:
        """Start a run of ``dag_id`` now (no logical date)."""
        self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})

    def _call(self, method: str, path: str, **kwargs: Any) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self._timeout) as client:
            if self._token is None:
                answer = client.post("/auth/token", json=self._credentials)
                answer.raise_for_status()
                self._token = answer.json()["access_token"]
            headers = {"Authorization": f"Bearer {self._token}"}
            client.request(method, path, headers=headers, **kwargs).raise_for_status()
