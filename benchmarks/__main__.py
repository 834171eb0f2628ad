"""``python -m benchmarks``: run every benchmark, print its figures, write BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import planning

BENCHMARKS = {"planning": planning.run}
REPORT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(names: list[str]) -> None:
    chosen = names or list(BENCHMARKS)
    sections = []
    for name in chosen:
        result = BENCHMARKS[name]()
        sys.stdout.write(json.dumps({k: v for k, v in result.items() if k != "markdown"}) + "\n")
        sections.append(result["markdown"])
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    machine = f"{_cpu()} x {os.cpu_count()}, Python {platform.python_version()}, load {load}"
    header = (
        "# Benchmarks\n\n"
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine}.\n"
    )
    REPORT.write_text(header + "\n" + "\n".join(sections))


if __name__ == "__main__":
    main(sys.argv[1:])
