"""Per-channel send rates (messages or SMS segments per second) across every worker.

A token bucket per channel. With ``POSTPURCHASE_REDIS_URL`` set, the bucket lives in Redis and
is updated by one Lua script, so all Celery workers on all hosts share it atomically and the
clock is Redis's own (worker clocks may drift). Redis rather than the database because the
bucket is touched once per message: at hundreds of messages a second a single hot row would
serialise every worker on a row lock (PostgreSQL) or the write lock (SQLite), while Redis
answers in well under a millisecond and is already there for Celery. Without Redis (the
embedded default, one machine) the bucket is per process.

Redis going away must not stop or mislabel sends: the shared limiter then falls back to a
bucket of the same rate in this process (said once in the log, and again when Redis answers
again), and asks Redis again every ``retry_after`` seconds. Each process then paces itself, so
together they may go faster than the configured rate while Redis is away; the providers' 429s
are retried by the senders, which is better than holding every message back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens + 1e-9 >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


# Refills are float arithmetic: without some slack a bucket a hair short of a token would ask
# for waits too small to move the clock.
_EPSILON = 1e-9


class RateLimiter(Protocol):
    def acquire(self, cost: float = 1.0) -> None:
        """Block until ``cost`` tokens are available, then take them."""


class LocalRateLimiter:
    """A token bucket for one process (threads share it)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)  # at most one second's worth at once
        self._tokens = self.burst
        self._stamp = clock()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self, cost: float = 1.0) -> None:
        cost = min(cost, self.burst)  # a long SMS must still go, just slowly
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens + _EPSILON >= cost:
                    self._tokens -= cost
                    return
                wait = (cost - self._tokens) / self.rate
            self._sleep(wait)


class RedisRateLimiter:
    """A token bucket in Redis under ``key``, shared by every process that uses the same key.

    While Redis cannot be reached, a per-process bucket of the same rate stands in (see the
    module doc); ``acquire`` never raises for a Redis outage.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        rate: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        retry_after: float = 30.0,
    ) -> None:
        self.key = key
        self.rate = rate
        self.burst = max(1.0, rate)
        self._script = client.register_script(_BUCKET_SCRIPT)
        self._sleep = sleep
        self._clock = clock
        self._retry_after = retry_after
        self._fallback = LocalRateLimiter(rate, clock=clock, sleep=sleep)
        self._lock = threading.Lock()
        self._down_since: float | None = None  # when Redis last failed; None while it answers
        self._where = _describe(client)

    @property
    def degraded(self) -> bool:
        """True while sends are paced per process because Redis did not answer."""
        return self._down_since is not None

    def acquire(self, cost: float = 1.0) -> None:
        cost = min(cost, self.burst)
        while True:
            if self._use_fallback():
                self._fallback.acquire(cost)
                return
            try:
                # The script takes tokens only when enough are there; otherwise it says how
                # long to wait, and this worker asks again (others may have taken them).
                wait = float(self._script(keys=[self.key], args=[self.rate, self.burst, cost]))
            except redis.RedisError as exc:
                self._went_down(exc)
                continue
            self._came_back()
            if wait <= 0:
                return
            self._sleep(wait)

    def _use_fallback(self) -> bool:
        with self._lock:
            if self._down_since is None:
                return False
            return self._clock() - self._down_since < self._retry_after

    def _went_down(self, exc: redis.RedisError) -> None:
        with self._lock:
            first = self._down_since is None
            self._down_since = self._clock()
        if first:  # once per outage, not once per message
            log.error(
                "rate limiter %s: Redis at %s did not answer (%s: %s); pacing at %g/s in this "
                "process instead, and asking Redis again every %gs",
                self.key,
                self._where,
                type(exc).__name__,
                exc,
                self.rate,
                self._retry_after,
            )

    def _came_back(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            self._down_since = None
        log.warning(
            "rate limiter %s: Redis at %s answers again; shared pacing resumed",
            self.key,
            self._where,
        )


def _describe(client: redis.Redis) -> str:
    """host:port/db of the client, never its password."""
    kwargs = client.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    return f"{where}/{kwargs.get('db', 0)}"


def rate_limiter(redis_url: str | None, channel: str, rate: float) -> RateLimiter:
    """The limiter for ``channel``: shared through Redis when ``redis_url`` is set."""
    if redis_url:
        # Short timeouts and one quick retry (for a pooled connection Redis closed): while
        # Redis is away, each look at it holds a send back, so it must cost little.
        client = redis.Redis.from_url(
            redis_url,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 1),
        )
        return RedisRateLimiter(client, f"postpurchase:ratelimit:{channel}", rate)
    return LocalRateLimiter(rate)
