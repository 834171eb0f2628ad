"""Starting and stopping real servers (``postpurchase serve``, Airflow's API server) for tests,
and the one ``free_port`` every test that opens a port uses."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(port: int, env: dict[str, str], log: Path, *, workers: int = 2) -> subprocess.Popen:
    """``postpurchase serve`` on ``port`` in its own process group (see ``stop``), its output
    in ``log``."""
    command = [str(Path(sys.executable).with_name("postpurchase")), "serve", "--port", str(port)]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command, "--workers", str(workers), "--no-access-log"],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and every worker it spawned."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:  # the server and every worker of its group are gone already
        process.wait()
        return
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
