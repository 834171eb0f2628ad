"""Airflow Connections as plain dicts, for the code that wires senders and platform APIs.

The lookup is passed in to whatever needs credentials (``channels.configured``,
``catalogue.platform_api``), so those modules never import Airflow themselves; a setting
wins over a connection wherever both are given.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


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


def connection_if_any(conn_id: str) -> dict[str, Any] | None:
    """As ``connection_fields``, but None when Airflow is not there or cannot be asked (the
    command line outside Airflow)."""
    try:
        return connection_fields(conn_id)
    except Exception as exc:  # no Airflow, or no way to reach its connections here
        log.debug("no Airflow connection %s: %s", conn_id, exc)
        return None
