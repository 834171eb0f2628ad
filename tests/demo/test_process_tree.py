"""A stop signal to the main job stops every process it started and frees their ports.

Real processes, no mocks: the supervisor program (``tree_programs.py``) does what
``postpurchase run`` does around ``airflow standalone``; its tree has a child in its own
process group that ignores SIGTERM and an orphan whose parent already exited.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from servers import free_port

from postpurchase.demo.local_airflow import LocalAirflow, parallelism
from postpurchase.settings import PROJECT_ROOT

ROLES = ("supervisor", "root", "stubborn", "spawner", "orphan")


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_ends_the_whole_tree_and_frees_its_ports(tmp_path: Path, signum):
    ports = (free_port(), free_port())
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    main = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.demo.tree_programs",
            "supervisor",
            str(tmp_path),
            *map(str, ports),
        ],
        env=env,
        cwd=PROJECT_ROOT,
    )
    pids: dict[str, int] = {}
    try:
        _wait_for(lambda: all((tmp_path / f"{r}.pid").exists() for r in ROLES))
        pids = {r: int((tmp_path / f"{r}.pid").read_text()) for r in ROLES}
        _wait_for(lambda: not _alive(pids["spawner"]))
        assert _alive(pids["orphan"]) and _alive(pids["stubborn"])
        assert not _port_is_free(ports[0]) and not _port_is_free(ports[1])

        main.send_signal(signum)
        assert main.wait(timeout=20) == 128 + signum

        survivors = [r for r, pid in pids.items() if _alive(pid)]
        assert survivors == []
        assert _port_is_free(ports[0]) and _port_is_free(ports[1])
        if signum != signal.SIGINT:
            killed = json.loads((tmp_path / "stopped.json").read_text())["killed"]
            # the two that ignore SIGTERM needed the KILL after the grace period
            assert sorted(killed) == sorted([pids["stubborn"], pids["orphan"]])
    finally:
        main.kill()
        main.wait()
        for pid in pids.values():  # never leave a process behind, even when the test fails
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass


def test_the_local_airflow_is_sized_to_the_machine(tmp_path: Path):
    assert parallelism(1) == 4
    assert parallelism(2) == 4
    assert parallelism(8) == 16
    assert parallelism(64) == 32
    env = LocalAirflow(tmp_path, port=8180, extra_env={}).env()
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(parallelism())
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= max(4, 2 * (os.cpu_count() or 1))
    # the log servers move with the UI port, so two local Airflows do not collide
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "8893"
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "8894"
    default = LocalAirflow(tmp_path, extra_env={}).env()
    assert default["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "8793"
