"""Per-channel send rates (messages or SMS segments per second) across every worker.

A token bucket per channel. With ``POSTPURCHASE_REDIS_URL`` set, the bucket lives in Redis and
is updated by one Lua script, so all Celery workers on all hosts share it atomically and the
clock is Redis's own (worker clocks may drift). Redis rather than the database because the
bucket is touched once per message: at hundreds of messages a second a single hot row would
serialise every worker on a row lock (PostgreSQL) or the write lock (SQLite), while Redis
answers in well under a millisecond and is already there for Celery. Without Redis (the
embedded default, one machine) the bucket is per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

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
    """A token bucket in Redis under ``key``, shared by every process that uses the same key."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        rate: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = key
        self.rate = rate
        self.burst = max(1.0, rate)
        self._script = client.register_script(_BUCKET_SCRIPT)
        self._sleep = sleep

    def acquire(self, cost: float = 1.0) -> None:
        cost = min(cost, self.burst)
        while True:
            # The script takes tokens only when enough are there; otherwise it says how long
            # to wait, and this worker asks again (others may have taken them meanwhile).
            wait = float(self._script(keys=[self.key], args=[self.rate, self.burst, cost]))
            if wait <= 0:
                return
            self._sleep(wait)


def rate_limiter(redis_url: str | None, channel: str, rate: float) -> RateLimiter:
    """The limiter for ``channel``: shared through Redis when ``redis_url`` is set."""
    if redis_url:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        return RedisRateLimiter(client, f"postpurchase:ratelimit:{channel}", rate)
    return LocalRateLimiter(rate)
