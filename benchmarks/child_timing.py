"""Timing a benchmark step in a fresh child process, so its peak memory is its own.

Both the segments and the outcomes benchmarks run each step (first refresh, second refresh,
report, baseline) in a spawned process. A step is a function ``step(engine, *args)`` that
prepares what it needs (configuration, not timed) and returns its work, a function of no
arguments returning a one-line detail; the child times the work and meters the CPU of every
process involved (``harness.CpuMeter``): the child itself, the PostgreSQL backends of the
database (none on SQLite, whose engine runs inside the child) and this process, waiting.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from benchmarks.harness import CpuMeter, cpu_per_item, peak_rss_mib
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine

Step = Callable[..., Callable[[], str]]
# The table ``Timing.row`` fills, one row per step.
TABLE_HEAD = (
    "| run | time | CPU | peak RSS | load average before / after | detail |\n"
    "| --- | ---: | --- | ---: | --- | --- |"
)


@dataclass(frozen=True)
class Timing:
    seconds: float
    peak_rss_mib: float
    detail: str
    cpu_seconds: dict[str, float]  # by process role
    load: tuple[str, str]  # load average when the work started, and when it ended

    def cpu(self, items: int, unit: str) -> str:
        return cpu_per_item(self.cpu_seconds, items, unit)

    def row(self, name: str, items: int, unit: str, detail: str = "") -> str:
        """The step's row of ``TABLE_HEAD``, CPU per ``unit`` (``items`` of them)."""
        return (
            f"| {name} | {self.seconds:.2f} s | {self.cpu(items, unit)} | "
            f"{self.peak_rss_mib:.0f} MiB | {self.load[0]} / {self.load[1]} | "
            f"{detail or self.detail} |"
        )

    def cpu_total(self, items: int) -> float:
        """CPU seconds per item, all processes together."""
        return sum(self.cpu_seconds.values()) / max(items, 1)


def _child(
    step: Step, url: str, args: tuple[object, ...]
) -> tuple[float, float, str, dict[str, float], tuple[str, str]]:
    engine: Engine = make_engine(parse_database_url(url))
    work = step(engine, *args)
    meter = CpuMeter().this_process("child").postgres("PostgreSQL", url)
    with meter:  # the backend is opened by the work: counted from its start
        started = time.perf_counter()
        detail = work()
        seconds = time.perf_counter() - started
    engine.dispose()  # after the meter's last look at the backend
    return seconds, peak_rss_mib(), detail, meter.seconds, (meter.load_before, meter.load_after)


def in_child(step: Step, url: str, *args: object) -> Timing:
    """Run ``step(engine, *args)``'s work in a spawned process and read back what it measured."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        waiting = time.process_time()
        seconds, peak_mib, detail, cpu, load = pool.apply(_child, (step, url, args))
        cpu["benchmark process"] = time.process_time() - waiting
    return Timing(seconds, peak_mib, detail, cpu, load)
