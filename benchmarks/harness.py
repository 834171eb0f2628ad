"""What every benchmark section reports, measured the same way in each of them.

A reader of BENCHMARKS.md must be able to judge a figure and reproduce it, so each section
says: the machine's load average before and after (``load_average`` read at the moments it
names), the CPU time per item of every process involved (``CpuMeter``, ``cpu_per_item``: on a
shared machine wall-clock rates move with the other users, CPU per item much less, though it
rises too when the load is well above the cores), the statistics state of its tables
(``analyze``, ``analyze_as_production`` or ``NOT_ANALYZED``), its ceiling and baseline
measured in the same run, and the command that reruns it (``rerun_command``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from sqlalchemy import text
from sqlalchemy.engine import make_url

from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine

PYTHON = ".venv/bin/python"
# Stands for the PostgreSQL database a benchmark may wipe, in printed commands.
POSTGRES_PLACEHOLDER = "postgresql://postgres@127.0.0.1/DB_TO_WIPE"
_TICKS = os.sysconf("SC_CLK_TCK")

NOT_ANALYZED = (
    "no ANALYZE before or during the measured run: the tables have no planner statistics, as "
    "on a fresh production database whose autovacuum runs late or not at all"
)

SQLITE_NOT_ANALYZED = "SQLite, no ANALYZE (as in production, where nothing runs one)"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages now, as ``1.09, 1.59, 1.49``."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def rerun_command(*args: str, postgres: bool = False) -> str:
    """The shell command that reruns a benchmark (``postgres``: with the database setting)."""
    prefix = f"POSTPURCHASE_BENCH_POSTGRES_URL={POSTGRES_PLACEHOLDER} " if postgres else ""
    return f"`{prefix}{PYTHON} -m {' '.join(args)}`"


def url_option(url: str) -> list[str]:
    """``--url`` for a module's own command line when ``url`` is PostgreSQL (SQLite: the
    module's default, a temporary file), as printed in a rerun command."""
    return [f"--url {POSTGRES_PLACEHOLDER}"] if url.startswith("postgresql") else []


def analyze(url: str) -> str:
    """ANALYZE every table of ``url``'s database now; returns the sentence saying so.

    Call it where production's autovacuum would have analysed the tables: after a bulk load,
    before the measured run.
    """
    engine = make_engine(parse_database_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return (
        "tables ANALYZEd after loading and before the measured run, as autovacuum's "
        "auto-analyze would leave them after a bulk load"
    )


def analyze_as_production(url: str) -> str:
    """The statistics production would have: ANALYZE on PostgreSQL (autovacuum analyses a
    table after a bulk load), none on SQLite (nothing analyses it there); the sentence."""
    if url.startswith("postgresql"):
        return analyze(url)
    return SQLITE_NOT_ANALYZED


def cpu_per_item(seconds: dict[str, float], items: int, unit: str) -> str:
    """CPU seconds by role as a sum per item: ``child 12.1 + PostgreSQL 4.0 = 16.1 us per
    customer`` (in ms from 1 ms per item)."""
    total = sum(seconds.values()) / max(items, 1)
    scale, name = (1e3, "ms") if total >= 1e-3 else (1e6, "us")
    parts = " + ".join(f"{role} {s * scale / max(items, 1):,.1f}" for role, s in seconds.items())
    if len(seconds) == 1:
        return f"{next(iter(seconds))} **{total * scale:,.1f}** {name} per {unit}"
    return f"{parts} = **{total * scale:,.1f}** {name} per {unit}"


def peak_rss_mib() -> float:
    """The most memory this process has held resident since it started its program, in MiB.

    Read from ``/proc/self/status`` (``VmHWM``), not ``getrusage``: a spawned process's
    ``ru_maxrss`` starts at its parent's resident size when it was forked (Linux keeps the
    replaced program's peak across ``exec``), so dispatch workers spawned by a benchmark
    process grown in earlier sections reported its 388 MB where they hold about 121.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a live process (all its threads), from ``/proc/<pid>/stat``; this
    process's own from ``time.process_time`` (the same sum, without /proc's 10 ms ticks)."""
    if pid == os.getpid():
        return time.process_time()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _tree(pid: int) -> list[int]:
    try:
        parent = psutil.Process(pid)
        return [pid, *(child.pid for child in parent.children(recursive=True))]
    except psutil.Error:
        return []


def _postgres_backends(database: str) -> list[int]:
    """Backends connected to ``database``, found by their process title.

    The server is shared with other databases, so only the run's own connections are counted;
    its shared processes (WAL writer, checkpointer) are not.
    """
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        words = title.replace("\0", " ").split()
        if words[:1] == ["postgres:"] and database in words[1:5]:
            pids.append(int(entry))
    return pids


# How often a CpuMeter reads its processes' CPU times.
SAMPLE_SECONDS = 0.5


class CpuMeter:
    """CPU seconds (user + system) of every process a measurement involves, by role.

    Roles are process trees (a server and its workers), this process (the load generator),
    the PostgreSQL backends of a database, or seconds measured elsewhere (``add``). Processes
    are sampled every ``interval`` seconds so ones that start during the run are counted from
    their start; one that ends between two samples loses at most its last interval. The load
    average is read when the measurement starts and when it ends.
    """

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self._finders: dict[str, Callable[[], list[int]]] = {}
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._extra: dict[str, float] = {}
        self._interval = interval
        # (wall-clock time, CPU seconds per role so far) at every sample: CPU over a part
        # of the run, to within a sampling interval (see ``between``).
        self.timeline: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.load_before = self.load_after = ""

    def process_tree(self, role: str, pid: int) -> CpuMeter:
        self._finders[role] = lambda: _tree(pid)
        return self

    def this_process(self, role: str) -> CpuMeter:
        own = os.getpid()
        self._finders[role] = lambda: [own]
        return self

    def postgres(self, role: str, url: str) -> CpuMeter:
        """The backends of ``url``'s database, if it is PostgreSQL (nothing to count else)."""
        database = make_url(url).database if url.startswith("postgresql") else None
        if database:
            self._finders[role] = lambda: _postgres_backends(database)
        return self

    def add(self, role: str, seconds: float) -> None:
        """CPU a process measured itself (pool workers that return their process time)."""
        self._extra[role] = self._extra.get(role, 0.0) + seconds

    def _sample(self, starting: bool) -> None:
        for role, find in self._finders.items():
            for pid in find():
                seconds = _cpu_seconds(pid)
                if seconds is None:
                    continue
                key = (role, pid)
                # Seen at the start: counted from there; appearing later: counted whole.
                self._first.setdefault(key, seconds if starting else 0.0)
                self._last[key] = seconds
        self.timeline.append((time.time(), self.seconds))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample(starting=False)

    def __enter__(self) -> CpuMeter:
        self.load_before = load_average()
        self._sample(starting=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(starting=False)
        self.load_after = load_average()

    @property
    def seconds(self) -> dict[str, float]:
        totals = {role: 0.0 for role in self._finders}
        for key, last in self._last.items():
            totals[key[0]] += last - self._first[key]
        for role, seconds in self._extra.items():
            totals[role] = totals.get(role, 0.0) + seconds
        return totals

    def between(self, role: str, began: float, ended: float) -> float:
        """CPU seconds of ``role`` from the sample nearest ``began`` to the one nearest
        ``ended`` (wall-clock times within the measurement); 0 for a role with no process."""

        def at(moment: float) -> float:
            nearest = min(self.timeline, key=lambda sample: abs(sample[0] - moment))
            return nearest[1].get(role, 0.0)

        return at(ended) - at(began)

    def per_item_ms(self, items: int) -> dict[str, float]:
        return {role: s * 1000 / max(items, 1) for role, s in self.seconds.items()}

    def per_item(self, items: int, unit: str) -> str:
        return cpu_per_item(self.seconds, items, unit)

    def describe(self, items: int, unit: str) -> str:
        """``CPU per request: server 0.190 ms, ...; total 0.280 ms``, plus the load average."""
        per_item = self.per_item_ms(items)
        parts = ", ".join(f"{role} {ms:.3f} ms" for role, ms in per_item.items())
        total = sum(per_item.values())
        return (
            f"CPU per {unit}: {parts}; total {total:.3f} ms, so {os.cpu_count()} idle cores "
            f"would do at most {1000 * (os.cpu_count() or 1) / total:,.0f} {unit}s/s "
            f"(load average {self.load_before} when this started, {self.load_after} when it "
            "ended)"
            if total
            else f"CPU per {unit}: none measured"
        )
