"""Timing a benchmark step in a fresh child process, so its peak memory is its own.

Both the segments and the outcomes benchmarks run each step (first refresh, second refresh,
report, baseline) in a spawned process that returns (seconds, peak RSS in KiB, detail).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    seconds: float
    peak_rss_mib: float
    detail: str


def in_child(target: object, *args: object) -> Timing:
    """Run ``target(*args)`` in a spawned process and read back what it measured."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        seconds, rss_kib, detail = pool.apply(target, args)  # type: ignore[arg-type]
    return Timing(seconds, rss_kib / 1024, detail)
