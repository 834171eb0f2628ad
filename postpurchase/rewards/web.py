"""What the rewards page and the storefront API share, set up once per app by ``create_app``:
the loyalty config, a redeemer (connections to the platform are kept alive) and a
per-customer request limit.

Routes declare ``rewards: RewardsDep`` (a FastAPI dependency, like the app's ``RuntimeDep``;
the storefront's call ``rewards_of(request)``) and await ``rewards.ready()`` (or call
``rewards.services()`` in a thread): built at first use from the app's settings and
database, rebuilt only when the loyalty file changes (a cheap check per call).
Credentials of the platform come through the ``connection`` lookup the app is wired with.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from postpurchase.channels.configured import ConnectionLookup
from postpurchase.loyalty.config import LoyaltyConfig, load_loyalty_config
from postpurchase.rewards.configured import configured_redeemer
from postpurchase.rewards.redeemer import Redeemer
from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory


@dataclass(frozen=True)
class Services:
    settings: Settings
    config: LoyaltyConfig
    redeemer: Redeemer
    limiter: PerCustomerLimit


def _modified(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


class RewardsRuntime:
    """The rewards services of one app."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        store: Callable[[], SessionFactory],
        *,
        connection: ConnectionLookup,
    ) -> None:
        self._settings = settings
        self._store = store
        self._connection = connection
        self._lock = threading.Lock()
        self._current: tuple[float, Services] | None = None

    def services(self) -> Services:
        """The services; ConfigError when the settings, the loyalty file or the platform's
        credentials are unusable."""
        settings = self._settings()
        modified = _modified(settings.loyalty_config)
        current = self._current
        if current is not None and current[0] == modified:
            return current[1]
        with self._lock:
            if self._current is not None and self._current[0] == modified:
                return self._current[1]
            old = self._current[1] if self._current else None
            config = load_loyalty_config(settings.loyalty_config)
            redeemer = configured_redeemer(
                settings, config, store=self._store(), connection=self._connection
            )
            built = Services(
                settings,
                config,
                redeemer,
                PerCustomerLimit(settings.storefront_requests_per_minute, 60.0),
            )
            if old is None:
                # Kept-alive platform connections close with the process, not with the GC.
                atexit.register(self.close)
            self._current = (modified, built)
        if old is not None:
            old.redeemer.close()
        return built

    async def ready(self) -> Services:
        """``services()`` for a route: in the event loop when they are built and current (a
        stat of the loyalty file), else in the thread pool (building them reads files)."""
        current = self._current
        if current is not None and current[0] == _modified(self._settings().loyalty_config):
            return current[1]
        return await run_in_threadpool(self.services)

    def close(self) -> None:
        if self._current is not None:
            self._current[1].redeemer.close()


def rewards_of(request: Request) -> RewardsRuntime:
    """The ``RewardsRuntime`` that ``create_app`` set up for this app (the storefront's routes
    read it here: as a dependency, FastAPI's solving of it cost 3% of a redemption's CPU)."""
    return cast(RewardsRuntime, request.app.state.rewards)


async def app_rewards(request: Request) -> RewardsRuntime:
    """``rewards_of`` as a dependency (async: FastAPI runs a plain function dependency in its
    thread pool, a thread hop per request for nothing)."""
    return rewards_of(request)


RewardsDep = Annotated[RewardsRuntime, Depends(app_rewards)]


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
