"""The one place the package touches Airflow: what DAG files share.

Everything else in the package is plain Python that DAG tasks call, so it can be tested and
run without a scheduler.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

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
