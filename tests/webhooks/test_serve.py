"""``postpurchase serve --workers N``: a listening socket per worker, supervised."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from servers import free_port, start_serve, stop, wait_until_healthy

from postpurchase.settings import parse_database_url
from postpurchase.store import schema
from postpurchase.store.database import make_engine

pytestmark = pytest.mark.slow

CONNECTIONS = 32


def _start(port: int, tmp_path: Path, log_name: str) -> tuple[subprocess.Popen, Path]:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    if not (tmp_path / "serve.db").exists():
        engine = make_engine(parse_database_url(url))
        schema.upgrade(engine)
        engine.dispose()
    env = {**os.environ, "POSTPURCHASE_DATABASE_URL": url}
    log = tmp_path / log_name
    return start_serve(port, env, log), log


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port()
    process, log = _start(port, tmp_path, "serve.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/webhooks/health", process, log, timeout=60)
        _wait_for_workers(process, port, 2)
        yield process, port
    finally:
        stop(process)


def _workers(process: subprocess.Popen, port: int) -> dict[int, int]:
    """Worker pid -> connections it holds on ``port``, for every worker listening there."""
    found = {}
    for child in psutil.Process(process.pid).children():
        try:
            connections = child.net_connections(kind="tcp")
        except psutil.Error:  # a worker just killed, not yet reaped
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections):
            found[child.pid] = sum(
                c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port for c in connections
            )
    return found


def _wait_for_workers(process: subprocess.Popen, port: int, count: int) -> None:
    """Until ``count`` workers listen: each starts listening once its app has loaded."""
    deadline = time.monotonic() + 60
    while len(_workers(process, port)) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def test_connections_opened_at_once_reach_every_worker(served):
    process, port = served
    clients = [
        socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(CONNECTIONS)
    ]
    try:
        # The kernel hands each connection to one worker's socket; all are accepted once a
        # request on each has been answered.
        for client in clients:
            client.sendall(b"GET /webhooks/health HTTP/1.1\r\nHost: test\r\n\r\n")
        for client in clients:
            assert client.recv(64).startswith(b"HTTP/1.1 200")
        held = _workers(process, port)
    finally:
        for client in clients:
            client.close()
    # Even odds per connection: all 32 on one worker would be a 1 in 2**31 draw.
    assert len(held) == 2 and all(held.values()), held
    assert sum(held.values()) == CONNECTIONS


def test_a_worker_that_dies_is_replaced(served):
    process, port = served
    [first, second] = _workers(process, port)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while first in _workers(process, port) and time.monotonic() < deadline:
        time.sleep(0.2)
    _wait_for_workers(process, port, 2)
    workers = set(_workers(process, port))
    assert second in workers and first not in workers and len(workers) == 2
    wait_until_healthy(f"http://127.0.0.1:{port}/webhooks/health", process, Path(), timeout=60)


def test_a_port_in_use_is_refused_with_one_line(served, tmp_path):
    _, port = served
    second, log = _start(port, tmp_path, "second.log")
    assert second.wait(timeout=60) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in log.read_text()


def test_one_worker_serves_in_the_process_itself_and_stops_cleanly(tmp_path):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    engine = make_engine(parse_database_url(url))
    schema.upgrade(engine)
    engine.dispose()
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "POSTPURCHASE_DATABASE_URL": url}
    process = start_serve(port, env, log, workers=1)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/webhooks/health", process, log, timeout=60)
        assert psutil.Process(process.pid).children() == []  # no worker processes
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then raises the signal again for whoever waits on the process.
        assert process.wait(timeout=30) == -signal.SIGTERM
    finally:
        stop(process)
    assert "Finished server process" in log.read_text()
