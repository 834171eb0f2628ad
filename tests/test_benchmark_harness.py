"""The benchmarks' shared reporting: CPU per item of every process, statistics, rerun lines,
the sections of BENCHMARKS.md with the machine's load and speed."""

import mmap
import multiprocessing
import re
import time

import pytest

import benchmarks.__main__ as bench_main
from benchmarks.harness import (
    SQLITE_NOT_ANALYZED,
    CpuMeter,
    analyze_as_production,
    cpu_per_item,
    peak_rss_mib,
    url_option,
)
from benchmarks.planning import _tenths
from benchmarks.segments import run_segments_benchmark


def test_cpu_per_item_sums_the_roles_in_a_readable_unit():
    seconds = {"child": 0.3, "PostgreSQL": 0.1}
    assert cpu_per_item(seconds, 10_000, "customer") == (
        "child 30.0 + PostgreSQL 10.0 = **40.0** us per customer"
    )
    assert cpu_per_item({"benchmark process": 0.05}, 10, "request") == (
        "benchmark process **5.0** ms per request"
    )


def test_the_meter_counts_this_process_and_reads_the_load():
    meter = CpuMeter().this_process("benchmark process")
    with meter:
        sum(n * n for n in range(300_000))
    assert meter.seconds["benchmark process"] > 0
    assert meter.load_before.count(",") == 2 and meter.load_after.count(",") == 2


def test_sqlite_gets_no_analyze_as_in_production_and_no_url_in_the_rerun_line(tmp_path):
    url = f"sqlite:///{tmp_path}/bench.db"
    assert analyze_as_production(url) == SQLITE_NOT_ANALYZED
    assert url_option(url) == []
    assert url_option("postgresql://u@h/db") == ["--url postgresql://postgres@127.0.0.1/DB_TO_WIPE"]


@pytest.mark.slow  # three spawned processes, each importing the package
def test_a_small_segments_run_reports_every_step_with_its_cpu_load_and_rerun_line(tmp_path):
    result = run_segments_benchmark(
        url=f"sqlite:///{tmp_path}/bench.db",
        customers=40,
        orders_per_customer=2,
        baseline_customers=10,
    )
    for step in (result.first, result.steady, result.baseline):
        assert step.cpu_seconds["child"] > 0
        assert "benchmark process" in step.cpu_seconds
        assert step.load[0] and step.load[1]
    report = result.markdown()
    assert f"Statistics: {SQLITE_NOT_ANALYZED}." in report
    assert (
        "Rerun: `.venv/bin/python -m benchmarks.segments --customers 40 "
        "--orders-per-customer 2 --baseline-customers 10`." in report
    )
    assert report.count(" us per customer |") + report.count(" ms per customer |") == 3


def test_the_meter_tells_the_cpu_of_a_part_of_the_run_from_its_samples():
    meter = CpuMeter(interval=0.05).this_process("benchmark process")
    with meter:
        idle_from = time.time()
        time.sleep(0.3)
        busy_from = time.time()
        # busy for as much CPU time as it slept, however fast the machine (the sampling
        # itself costs the idle part some CPU: about a hundredth of a second here)
        spent = time.process_time() + 0.3
        while time.process_time() < spent:
            sum(n * n for n in range(10_000))
        busy_to = time.time()
    idle = meter.between("benchmark process", idle_from, busy_from)
    busy = meter.between("benchmark process", busy_from, busy_to)
    assert busy > 5 * idle
    assert meter.between("PostgreSQL", idle_from, busy_to) == 0.0  # no such role: nothing


def test_each_tenth_of_a_planning_run_has_its_rate_and_the_workers_cpu_per_event():
    # two workers of five 100-event batches each, one batch per second in turn; the second
    # worker's batches take twice the CPU
    parts = [
        {
            "began": 0.0,
            "cpu_began": 10.0,
            "progress": [
                (1.0 + 2 * i + w, 100, 0.0, 10.0 + (i + 1) * 0.01 * (w + 1)) for i in range(5)
            ],
        }
        for w in range(2)
    ]
    meter = CpuMeter()
    meter.timeline = [(float(t), {"PostgreSQL": t * 0.02}) for t in range(0, 12)]

    tenths = _tenths(parts, meter)

    assert [t.rate for t in tenths] == [100.0] * 10
    assert [round(t.workers_us) for t in tenths] == [100, 200] * 5
    assert all(t.database_us is None for t in tenths)  # a second each: too short to sample

    for part in parts:  # ten times slower: ten seconds a tenth, the database sampled each second
        part["progress"] = [(10 * at, n, rss, cpu) for at, n, rss, cpu in part["progress"]]
    meter.timeline = [(float(t), {"PostgreSQL": t * 0.02}) for t in range(0, 120)]
    assert [round(t.database_us or 0) for t in _tenths(parts, meter)] == [2000] * 10


def test_a_section_is_replaced_alone_and_says_the_machine_s_speed_before_and_after(
    tmp_path, monkeypatch
):
    results = tmp_path / "BENCHMARKS.md"
    results.write_text(
        bench_main.HEADER + "\n## planning\n\nold planning figures\n\n## intake\n\nintake figures\n"
    )
    monkeypatch.setattr(bench_main, "RESULTS", results)

    bench_main.write_section(
        "planning", "new planning figures", "0.50, 0.40, 0.30", 18.4, "`rerun`"
    )

    text = results.read_text()
    assert "old planning figures" not in text
    assert text.count("## planning") == 1 and "intake figures" in text
    section = text[text.index("## planning") : text.index("## intake")]
    probe = re.search(
        r"speed probe 18\.4 ms before, ([0-9.]+) ms after\. Rerun: `rerun`\.", section
    )
    assert probe is not None, section
    assert float(probe.group(1)) > 0
    assert "load average 0.50, 0.40, 0.30 before the benchmark started" in section
    assert section.rstrip().endswith("new planning figures")


def test_a_spawned_process_reports_its_own_peak_memory_not_its_parent_s():
    # Linux starts a spawned process's ru_maxrss at its parent's resident size; a benchmark
    # process grown large in earlier sections made its workers look as large.
    held = bytearray(400 * 2**20)
    held[:: mmap.PAGESIZE] = b"x" * (len(held) // mmap.PAGESIZE)  # a byte per page: resident
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        child = pool.apply(peak_rss_mib)
    assert peak_rss_mib() > 400
    assert child < 250, f"a fresh process importing the harness reported {child:.0f} MiB"
