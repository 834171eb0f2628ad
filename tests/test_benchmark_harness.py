"""The benchmarks' shared reporting: CPU per item of every process, statistics, rerun lines."""

import pytest

from benchmarks.harness import (
    SQLITE_NOT_ANALYZED,
    CpuMeter,
    analyze_as_production,
    cpu_per_item,
    url_option,
)
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
