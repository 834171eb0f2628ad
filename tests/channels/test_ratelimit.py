"""Rate limits: a local token bucket with an injected clock, and one bucket shared via Redis."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from postpurchase.channels.ratelimit import LocalRateLimiter, RedisRateLimiter, rate_limiter

REDIS_DB = 13  # this suite's own database on the shared Redis
ONE_RETRY = Retry(NoBackoff(), 1)  # as rate_limiter() builds its client


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
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=2)
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


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisThatGoesAway:
    """A TCP relay to the real Redis that can be cut off, as when Redis stops mid-run."""

    def __init__(self) -> None:
        self.port = 0
        self._sockets: list[socket.socket] = []
        self.start()

    def start(self) -> None:
        """Listen (again, on the same port once it has one)."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", 6379))
                self._sockets += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)

    def stop(self) -> None:
        """Close the port and every open connection: later connects are refused."""
        # shutdown first: a bare close leaves the socket listening while accept() blocks on it
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_a_dead_redis_falls_back_to_a_local_bucket_and_says_so_once(caplog):
    t = FakeTime()
    client = redis.Redis(host="127.0.0.1", port=closed_port(), db=REDIS_DB, retry=ONE_RETRY)
    limiter = RedisRateLimiter(
        client, "postpurchase:ratelimit:sms", 1, clock=t.clock, sleep=t.sleep
    )

    with caplog.at_level(logging.WARNING, logger="postpurchase.channels.ratelimit"):
        for _ in range(3):
            limiter.acquire()

    assert limiter.degraded
    # Still paced, by the local bucket: one token at once, then one a second.
    assert sum(t.waits) == pytest.approx(2.0)
    [record] = caplog.records
    assert "did not answer" in record.getMessage()
    assert f"{client.connection_pool.connection_kwargs['port']}/13" in record.getMessage()


def test_rate_limiter_from_a_dead_url_does_not_raise_nor_log_the_password(caplog):
    limiter = rate_limiter(f"redis://:hunter2@127.0.0.1:{closed_port()}/13", "email", 1000)
    with caplog.at_level(logging.WARNING, logger="postpurchase.channels.ratelimit"):
        limiter.acquire()
    assert isinstance(limiter, RedisRateLimiter) and limiter.degraded
    assert caplog.records and "hunter2" not in caplog.text


def test_redis_going_away_mid_run_then_coming_back(redis_client, caplog):
    relay = RedisThatGoesAway()
    key = f"postpurchase:test:{uuid.uuid4().hex}"
    t = FakeTime()
    client = redis.Redis(host="127.0.0.1", port=relay.port, db=REDIS_DB, retry=ONE_RETRY)
    limiter = RedisRateLimiter(client, key, 100, clock=t.clock, sleep=t.sleep, retry_after=30)
    try:
        limiter.acquire()
        assert not limiter.degraded
        assert redis_client.exists(key)  # the shared bucket was used

        relay.stop()
        with caplog.at_level(logging.WARNING, logger="postpurchase.channels.ratelimit"):
            for _ in range(5):
                limiter.acquire()
            assert limiter.degraded

            # Redis is back; after retry_after the shared bucket is asked again and used.
            relay.start()
            redis_client.delete(key)
            t.now += 31
            limiter.acquire()
        assert not limiter.degraded
        assert redis_client.exists(key)
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2
        assert "did not answer" in messages[0] and "answers again" in messages[1]
    finally:
        relay.stop()
        redis_client.delete(key)
        client.close()
