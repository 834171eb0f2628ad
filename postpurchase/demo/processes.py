"""A child process tree stopped as a whole, and the signals that stop the main job.

``airflow standalone`` starts about a dozen components, and LocalExecutor workers and task
supervisors under them; task processes put themselves in their own process group
(``setpgid``), so stopping standalone's group alone leaves them behind, and its children were
seen to linger over 40 s after SIGTERM. :class:`ProcessTree` therefore finds every process
of the session it started (and remembers the descendants it saw), signals each group and
process, waits a grace period, and kills what is left. On Linux the main process also
becomes a child subreaper, so orphans whose parent died are re-parented to it and reaped
here rather than left as zombies of init.

Python ends on SIGTERM and SIGHUP without running ``finally`` blocks; :func:`stop_signals`
turns them (and SIGINT) into :class:`StopRequested`, so the main job cleans up whatever
stopped it: a terminal closed, ``systemctl stop``, ``docker stop`` or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

import psutil

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_PR_SET_CHILD_SUBREAPER = 36


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived. A KeyboardInterrupt, so ``except Exception`` never swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Raise :class:`StopRequested` in the main thread on the first SIGTERM, SIGHUP or SIGINT.

    Later signals are ignored while the caller cleans up (the cleanup is bounded by its own
    grace period), so a second Ctrl-C cannot cut a shutdown short and leave children behind.
    Previous handlers are restored on exit.
    """
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise StopRequested(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def become_subreaper() -> bool:
    """Make orphaned descendants children of this process (Linux), so none escapes a stop."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class ProcessTree:
    """One command started in its own session, with everything it starts.

    ``stop()`` sends SIGTERM to every process group and process of the tree, waits up to
    ``grace`` seconds for all of them, then sends SIGKILL to the rest.
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._seen: dict[int, psutil.Process] = {}

    def start(self) -> None:
        become_subreaper()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a terminal's signals do not reach it
            )

    def exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def members(self) -> list[psutil.Process]:
        """The processes of the tree still alive: the root and its descendants, every
        process of its session (a process that moved to its own group stays in the session,
        and is found even after its parent died), and those seen before."""
        if self.process is None:
            return []
        session = self.process.pid  # start_new_session: the root leads its own session
        found: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.process.pid)
            found = [root, *root.children(recursive=True)]
        for candidate in psutil.process_iter():
            with contextlib.suppress(OSError, psutil.Error):
                if os.getsid(candidate.pid) == session:
                    found.append(candidate)
        for member in found:
            self._seen.setdefault(member.pid, member)
        return [p for p in self._seen.values() if _alive(p)]

    def stop(self, *, grace: float = 15.0) -> list[int]:
        """Stop the whole tree; returns the pids that needed SIGKILL. Safe to call twice."""
        if self.process is None:
            return []
        self._signal(self.members(), signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self._reap()
            if not self.members():
                break
            time.sleep(0.1)
        left = self.members()
        self._signal(left, signal.SIGKILL)
        # psutil.wait_procs reaps our own children and waits for the others to vanish.
        psutil.wait_procs(left, timeout=5)
        self._reap()
        return [p.pid for p in left]

    def _signal(self, members: list[psutil.Process], signum: signal.Signals) -> None:
        groups = set()
        for member in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                groups.add(os.getpgid(member.pid))
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signum)
        for member in members:  # psutil checks the pid still names the same process
            with contextlib.suppress(psutil.Error):
                member.send_signal(signum)

    def _reap(self) -> None:
        """Collect the exit status of dead children (ours, or orphans re-parented to us)."""
        if self.process is not None:
            self.process.poll()
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
