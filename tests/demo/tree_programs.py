"""Programs for the process-tree tests, run as ``python -m tests.demo.tree_programs ROLE``.

``supervisor`` is what ``postpurchase run`` does around Airflow: stop signals turned into a
cleanup that stops a ProcessTree. The tree it starts looks like Airflow's where it hurts:

- ``root`` (like ``airflow standalone``) listens on a port and exits at once on SIGTERM,
  leaving its children behind;
- ``stubborn`` moves to its own process group (like a task supervisor), ignores SIGTERM and
  listens on a second port;
- ``spawner`` starts ``stubborn``'s twin ``orphan`` and exits, so ``orphan`` has no parent
  in the tree by the time the tree is stopped.
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


def _child(role: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.demo.tree_programs", role, *args])


def _listen(port: int) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    return server


def _report(pids_dir: Path, role: str) -> None:
    (pids_dir / f"{role}.pid").write_text(str(os.getpid()))


def root(pids_dir: Path, port_a: int, port_b: int) -> None:
    server = _listen(port_a)
    _child("stubborn", str(pids_dir), str(port_b))
    _child("spawner", str(pids_dir))
    _report(pids_dir, "root")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while server:
        time.sleep(1)


def stubborn(pids_dir: Path, port: int) -> None:
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server = _listen(port)
    _report(pids_dir, "stubborn")
    while server:
        time.sleep(1)


def spawner(pids_dir: Path) -> None:
    _child("orphan", str(pids_dir))
    _report(pids_dir, "spawner")


def orphan(pids_dir: Path) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(0.5)  # let the spawner exit first
    _report(pids_dir, "orphan")
    while True:
        time.sleep(1)


def supervisor(pids_dir: Path, port_a: int, port_b: int) -> None:
    from postpurchase.demo.processes import ProcessTree, StopRequested, stop_signals

    tree = ProcessTree(
        [
            sys.executable,
            "-m",
            "tests.demo.tree_programs",
            "root",
            str(pids_dir),
            str(port_a),
            str(port_b),
        ],
        env=dict(os.environ),
        log_path=pids_dir / "tree.log",
    )
    with stop_signals():
        try:
            tree.start()
            _report(pids_dir, "supervisor")
            while True:
                time.sleep(3600)
        except StopRequested as stop:
            killed = tree.stop(grace=1.0)
            (pids_dir / "stopped.json").write_text(json.dumps({"killed": killed}))
            raise SystemExit(128 + stop.signum) from None
        except KeyboardInterrupt:
            tree.stop(grace=1.0)
            raise SystemExit(130) from None


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    directory = Path(rest[0])
    ports = [int(p) for p in rest[1:]]
    {
        "root": root,
        "stubborn": stubborn,
        "spawner": spawner,
        "orphan": orphan,
        "supervisor": supervisor,
    }[role](directory, *ports)
