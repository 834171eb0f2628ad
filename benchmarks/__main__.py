"""``python -m benchmarks [NAME ...] [--quick]``: run benchmarks, update BENCHMARKS.md.

Each benchmark owns one ``## <name>`` section; other sections are left as they are, so
benchmarks can be run one at a time. The section starts with the machine, the date, the load
average and the machine's speed (``machine_speed``) read before the benchmark started and after
it ended, and the command that reruns it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import REGISTRY
from benchmarks.harness import load_average, rerun_command
from benchmarks.machine_speed import probe_ms

RESULTS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n"
    "\n"
    "Written by `make bench` (`python -m benchmarks`); each section is replaced when its\n"
    "benchmark runs again. Numbers are from the machine named in the section, measured with\n"
    "the baseline and the ceiling in the same run. Each section gives the load average before\n"
    "and after, and the CPU time per item of every process involved: on a shared machine the\n"
    "rates move with the other users, CPU per item much less (though it too rises when the load\n"
    "is well above the cores), so compare the lines of one run (see benchmarks/harness.py).\n"
    "It also says whether its tables had planner statistics (ANALYZE after a bulk load, as\n"
    "production's autovacuum would leave them, or none), and prints next to each line the\n"
    "command that reruns it (`DB_TO_WIPE` stands for a PostgreSQL database it may wipe).\n"
    "\n"
    "Machines differ, and one machine's speed moves with its neighbours: each section gives the\n"
    "CPU time of a fixed workload (the speed probe, benchmarks/machine_speed.py; lower is\n"
    "faster) before and after its run. Set absolute figures of two sections or two days against\n"
    "each other with it; ratios to a ceiling measured in the same run need no such help.\n"
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.1f} GiB RAM"
    except ImportError:  # psutil comes with Airflow; without it the line is shorter
        pass
    return (
        f"{platform.node()}: {os.cpu_count()} CPU ({cpu}){memory}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def write_section(
    name: str, body: str, load_before: str, speed_before: float, command: str
) -> None:
    """Replace (or add) the ``## name`` section; the load average and speed after are read now."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## {name}\n\nRun {stamp} on {machine()}; load average {load_before} before the "
        f"benchmark started, {load_average()} after it ended; speed probe {speed_before:.1f} ms "
        f"before, {probe_ms():.1f} ms after. Rerun: {command}.\n\n"
        f"{body.strip()}\n"
    )
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"of {', '.join(REGISTRY)}; default: all")
    parser.add_argument(
        "--quick", action="store_true", help="smaller counts, for a smoke run (recorded)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(REGISTRY))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    for name in args.names or list(REGISTRY):
        module = importlib.import_module(REGISTRY[name])
        command = rerun_command(
            "benchmarks",
            name,
            *(["--quick"] if args.quick else []),
            postgres="POSTPURCHASE_BENCH_POSTGRES_URL" in os.environ,
        )
        print(f"==> benchmark {name} (rerun: {command})", flush=True)
        load_before, speed_before = load_average(), probe_ms()
        write_section(name, module.run(quick=args.quick), load_before, speed_before, command)
        print(f"==> {name}: results in {RESULTS.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
