"""The one place the package touches Airflow: what DAG files share.

Everything else in the package is plain Python that DAG tasks call, so it can be tested and
run without a scheduler.

Waking the processing DAG: webhook intake only writes the inbox and never calls Airflow. The
``INBOX_ASSET`` watcher runs ``InboxWatermarkTrigger`` in the triggerer, which polls the
inbox's highest id and fires when it moves, which is an asset event that starts a run. Asset
events can be stranded in Airflow 3.3.2 (apache/airflow#56050), so the DAG also runs every
minute and always drains the inbox itself: the event only shortens the wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pendulum
from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

OWNER = "postpurchase"

# Tasks are idempotent (unique keys, upserts, leases), so retrying them is always safe.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}

# A fixed date in the past: schedules start from here, and catchup is off on every DAG.
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

log = logging.getLogger(__name__)


def _read_watermark() -> int:
    # Imported here: the triggerer and DAG processor import this module, and only the
    # trigger's poll needs a database connection.
    from postpurchase.settings import load_settings
    from postpurchase.store.database import open_store
    from postpurchase.store.status import inbox_watermark

    with open_store(load_settings())() as session:
        return inbox_watermark(session)


class InboxWatermarkTrigger(BaseEventTrigger):
    """Fires each time the inbox's highest id grows past the last value it saw.

    The first poll only records the watermark: it fires on movement, never on presence, so a
    restarted triggerer does not wake the DAG for rows it may already have processed (the
    one-minute schedule covers anything that arrived while the triggerer was down). A failed
    poll (database unreachable) is logged and retried at the next interval.

    The database is the engine's own (``POSTPURCHASE_DATABASE_URL`` in the triggerer's
    environment); nothing secret is serialised into Airflow's.
    """

    def __init__(self, *, poll_interval: float = 5.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.poll_interval = poll_interval
        self.watermark: int | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{__name__}.{type(self).__name__}", {"poll_interval": self.poll_interval})

    async def poll(self) -> TriggerEvent | None:
        """Read the watermark once; an event when it moved since the previous poll."""
        try:
            current = await asyncio.to_thread(_read_watermark)
        except Exception as exc:  # a poll must never end the watcher; the next one retries
            log.warning("inbox watermark poll failed: %s", exc)
            return None
        previous, self.watermark = self.watermark, current
        if previous is None or current <= previous:
            return None
        return TriggerEvent({"inbox_watermark": current})  # type: ignore[no-untyped-call]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            event = await self.poll()
            if event is not None:
                yield event
            await asyncio.sleep(self.poll_interval)


INBOX_ASSET = Asset(
    "postpurchase_inbox",
    watchers=[AssetWatcher(name="postpurchase_inbox_watermark", trigger=InboxWatermarkTrigger())],
)


def connection_fields(conn_id: str) -> dict[str, Any] | None:
    """Login, password, host and extra of an Airflow Connection; None when it is not defined.

    Read at send time (in a task), never when a DAG file is parsed.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return {
        "login": conn.login,
        "password": conn.password,
        "host": conn.host,
        "extra": conn.extra_dejson,
    }


# Run notes: the counts of a run, shown on the run in the Airflow UI.
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
    for attempt in range(1, attempts + 1):
        try:
            _patch_note(base_url, username, password, dag_id, run_id, note)
            return
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code < 500 or attempt == attempts:
                raise
        except httpx.TransportError:
            if attempt == attempts:
                raise
        sleep(pause * attempt)


def _patch_note(
    base_url: str, username: str, password: str, dag_id: str, run_id: str, note: str
) -> None:
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=10) as client:
        answer = client.post("/auth/token", json={"username": username, "password": password})
        answer.raise_for_status()
        token = answer.json()["access_token"]
        client.patch(
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}",
            params={"update_mask": "note"},
            json={"note": note},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
