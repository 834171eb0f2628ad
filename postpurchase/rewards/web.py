"""What the rewards page and the storefront API share: settings, the loyalty config and a
redeemer built once per process (connections to the platform are kept alive), and a
per-customer request limit."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from postpurchase.airflow_glue.connections import connection_fields
from postpurchase.loyalty.config import LoyaltyConfig, load_loyalty_config
from postpurchase.rewards.configured import (
    RewardsSettings,
    configured_redeemer,
    load_rewards_settings,
)
from postpurchase.rewards.redeemer import Redeemer
from postpurchase.settings import ENV_PREFIX, Settings, load_settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    rewards: RewardsSettings
    config: LoyaltyConfig
    redeemer: Redeemer
    limiter: PerCustomerLimit


_lock = threading.Lock()
_current: tuple[tuple[object, float], Services] | None = None


@atexit.register
def _close() -> None:
    # Kept-alive platform connections are closed with the process, not left to the GC.
    if _current is not None:
        _current[1].redeemer.close()


def _environment() -> tuple[object, ...]:
    # What settings are read from: POSTPURCHASE_ variables and the .env file. Comparing these
    # costs microseconds; building both settings objects costs some 3 ms per request.
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)))
    dotenv = Path(".env")
    return env, dotenv.stat().st_mtime if dotenv.exists() else None


def services() -> Services:
    """The services for the current settings; rebuilt when the environment, the .env file or
    the loyalty file change (checked on each call, cheaply)."""
    global _current
    environment = _environment()
    current = _current
    if current is not None and current[0][0] == environment:
        path = current[1].settings.loyalty_config
        if (path.stat().st_mtime if path.exists() else 0.0) == current[0][1]:
            return current[1]
    settings, rewards = load_settings(), load_rewards_settings()
    path = settings.loyalty_config
    identity = (environment, path.stat().st_mtime if path.exists() else 0.0)
    with _lock:
        if _current is not None and _current[0] == identity:
            return _current[1]
        old = _current[1] if _current else None
        config = load_loyalty_config(path)
        built = Services(
            settings,
            rewards,
            config,
            configured_redeemer(settings, config, rewards, connection=connection_fields),
            PerCustomerLimit(rewards.storefront_requests_per_minute, 60.0),
        )
        _current = (identity, built)
    if old is not None:
        old.redeemer.close()
    return built


class PerCustomerLimit:
    """At most ``limit`` requests per customer in any ``window`` seconds, in this process.

    Enough to stop a widget stuck in a loop or a scripted redeem storm per customer; the
    storefront itself has its own protections in front."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_needed(self, customer: str, now: float | None = None) -> float:
        """0 when the request may go ahead (and counts it), else seconds until it may."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            seen = self._seen.setdefault(customer, deque())
            while seen and seen[0] <= moment - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                return seen[0] + self.window - moment
            seen.append(moment)
            if len(self._seen) > 100_000:  # forget idle customers; bounded memory
                for key in [k for k, v in self._seen.items() if not v]:
                    del self._seen[key]
            return 0.0
