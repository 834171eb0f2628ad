"""Run notes: the counts of a run, shown on the run in the Airflow UI."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from postpurchase.airflow_glue.connections import connection_fields
from postpurchase.airflow_glue.rest import AirflowApi

log = logging.getLogger(__name__)

RUN_NOTE_CONNECTION = "postpurchase_airflow_api"
RUN_NOTE_MAX_CHARS = 1000  # Airflow's public API refuses longer notes


def note_this_run(text: str) -> str:
    """Show ``text`` as the current DAG run's note in the Airflow UI; returns ``text``.

    A task cannot set its run's note in Airflow 3.3 (only the public REST API can), so the
    note goes through that API with the ``postpurchase_airflow_api`` connection: host is the
    API server's base URL (``http://airflow-apiserver:8080``), login and password a user
    allowed to edit runs. Without the connection, or when the API refuses, the counts stay in
    the task's return value and log only: a run never fails for its note.
    """
    from airflow.sdk import get_current_context

    api = connection_fields(RUN_NOTE_CONNECTION)
    if api is None or not api["host"]:
        log.info("no %s connection: the run note is not written", RUN_NOTE_CONNECTION)
        return text
    dag_run = get_current_context()["dag_run"]
    try:
        write_run_note(
            str(api["host"]),
            username=api["login"] or "",
            password=api["password"] or "",
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            note=_as_markdown(text),
        )
    except httpx.HTTPError as exc:
        log.warning("could not write the run note through %s: %s", api["host"], exc)
    return text


def _as_markdown(text: str) -> str:
    """Summary lines as the UI's markdown shows them: indented detail lines become a list."""
    lines = []
    for line in text.splitlines():
        if line.startswith("  "):
            lines.append(f"- {line.strip()}")
        elif line.strip():
            lines += ["", line] if lines else [line]
    return "\n".join(lines)


def write_run_note(
    base_url: str,
    *,
    username: str,
    password: str,
    dag_id: str,
    run_id: str,
    note: str,
    attempts: int = 3,
    pause: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Set a DAG run's note through Airflow's public REST API (token, then PATCH).

    A server error or a dropped connection is tried again, ``attempts`` times in all, after
    ``pause``, then twice that: an API server on a busy SQLite metadata database answers
    500 now and then, and a note lost to that leaves ops an empty note on a run that worked.
    A refusal (4xx: wrong password, unknown run) is not retried.
    """
    if len(note) > RUN_NOTE_MAX_CHARS:
        note = note[: RUN_NOTE_MAX_CHARS - 1] + "…"
    api = AirflowApi(base_url, username, password)
    for attempt in range(1, attempts + 1):
        try:
            api.set_run_note(dag_id, run_id, note)
            return
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code < 500 or attempt == attempts:
                raise
        except httpx.TransportError:
            if attempt == attempts:
                raise
        api.forget_token()
        sleep(pause * attempt)
