"""What every DAG file sets the same way: owner, retries, start date."""

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
