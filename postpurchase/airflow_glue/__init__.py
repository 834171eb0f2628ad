"""The one place the package touches Airflow: what DAG files and task bodies share.

Everything else in the package is plain Python that DAG tasks call, so it can be tested and
run without a scheduler. By role:

- ``defaults``: owner, default args and start date of every DAG.
- ``triggers``: the inbox asset and the trigger that wakes the processing DAG.
- ``connections``: Airflow Connection fields, read at run time (never at parse time).
- ``rest``: the client of Airflow's public REST API (run notes, the demo's DAG runs).
- ``run_notes``: a run's counts shown as its note in the Airflow UI.

Names are loaded on first use, so a module that only needs ``connections`` does not import
the Airflow SDK; the trigger's serialised classpath (``postpurchase.airflow_glue.
InboxWatermarkTrigger``) stays the one Airflow already holds for the asset watcher.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DEFAULT_ARGS",
    "INBOX_ASSET",
    "OWNER",
    "START_DATE",
    "InboxWatermarkTrigger",
    "connection_fields",
    "note_this_run",
    "write_run_note",
]

_HOME = {
    "DEFAULT_ARGS": "defaults",
    "OWNER": "defaults",
    "START_DATE": "defaults",
    "INBOX_ASSET": "triggers",
    "InboxWatermarkTrigger": "triggers",
    "connection_fields": "connections",
    "note_this_run": "run_notes",
    "write_run_note": "run_notes",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
