"""Rate limits: a local token bucket with an injected clock, and one bucket shared via Redis."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from postpurchase.channels.ratelimit import LocalRateLimiter, RedisRateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_local_bucket_allows_a_burst_then_paces():
    t = FakeTime()
    limiter = LocalRateLimiter(5, clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        limiter.acquire()
    assert t.waits == []
    for _ in range(10):
        limiter.acquire()
    # Ten more at 5/s need two more seconds of tokens, waited in small steps.
    assert sum(t.waits) == pytest.approx(2.0)


def test_sms_segments_cost_more_than_one_token():
    t = FakeTime()
    limiter = LocalRateLimiter(1, clock=t.clock, sleep=t.sleep)
    limiter.acquire(1)
    limiter.acquire(1)  # a second one-segment SMS waits a second
    assert sum(t.waits) == pytest.approx(1.0)


@pytest.fixture
def redis_client():
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    yield client
    client.close()


def test_redis_bucket_is_shared_between_workers(redis_client):
    key = f"postpurchase:test:{uuid.uuid4().hex}"
    waits: dict[str, list[float]] = {"a": [], "b": []}

    def sleeper(name):
        def sleep(seconds: float) -> None:
            waits[name].append(seconds)
            time.sleep(seconds)

        return sleep

    # Two workers (two limiter objects, as in two processes) on one bucket of 0.5/s.
    worker_a = RedisRateLimiter(redis_client, key, 0.5, sleep=sleeper("a"))
    worker_b = RedisRateLimiter(redis_client, key, 0.5, sleep=sleeper("b"))
    try:
        worker_a.acquire()
        worker_b.acquire()  # the bucket's one token is gone: B has to wait for the refill
    finally:
        redis_client.delete(key)

    assert waits["a"] == []
    assert waits["b"] and waits["b"][0] > 0
