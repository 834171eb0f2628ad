"""Benchmark ``pages``: how long each page of the Airflow UI pages takes to answer.

Loads the ``outcomes`` benchmark's shop (``touchpoints`` touchpoints over 60 days, three
provider events each, as many paid orders, half as many customers), runs the outcome refresh
once (as the hourly DAG would have), adds an inbox of processed, pending and failed events,
then asks each page through the pages' app in this process, once to warm it, then several
times, and reports the median and the slowest answer. The login check is left out (it is
Airflow's: one JWT decode and one lookup of revoked tokens); the database work and the
rendering are in. The
floor, asked the same way in the same run, is the app's top route (a redirect: no database,
no template). Reported per page: median and slowest answer, and the CPU per request of this
process and of the database's backends; the tables have the statistics production would have
(``harness.analyze_as_production``).

Goal: every page under 300 ms with 1M touchpoints on PostgreSQL. The what-if page is not
timed here: it replays days of history on purpose (``campaigns simulate`` shows its progress).

Entry points: ``run(quick)`` for ``make bench``; ``python -m benchmarks.pages --help``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select, text

from benchmarks.databases import fresh_schema, number_series
from benchmarks.harness import CpuMeter, analyze_as_production, rerun_command, url_option
from benchmarks.outcomes import NOW, _ago, _config, load
from postpurchase.pages.airflow_runs import AirflowState
from postpurchase.pages.app import create_pages_app
from postpurchase.pages.auth import PageUser
from postpurchase.settings import Settings, parse_database_url
from postpurchase.store.database import make_engine, session_factory, transaction
from postpurchase.store.models import Customer, Order
from postpurchase.tasks.outcomes import measure_outcomes

GOAL_MS = 300.0
REPEATS = 7
INTRO = (
    f"Each page asked once to warm it, then {REPEATS} times, through the pages' app in the "
    "benchmark's process (the login check, Airflow's, left out), after the `outcomes` "
    "benchmark's shop was loaded and measured as the hourly run leaves it, with an inbox of half"
    " as many events as touchpoints (a few hundred pending and failed). The what-if page is not "
    "timed: it replays history on purpose. The floor, in the same run: the app's top route, "
    "which goes through the same client, mount and login dependency and answers a redirect "
    "without touching the database or a template. CPU per request is user + system time of the "
    "benchmark process (app and client together) and of the PostgreSQL backends of the run's "
    "database (counted in 10 ms ticks; on SQLite the engine runs inside the benchmark process)."
)


class _Everyone:
    """Lets every request in as an Op: the benchmark times the pages, not Airflow's login."""

    async def user_for(self, token: str) -> PageUser:
        return PageUser(name="bench", may_act=True, token=token)


@dataclass(frozen=True)
class PageTiming:
    path: str
    median_ms: float
    slowest_ms: float
    meter: CpuMeter

    @property
    def cpu(self) -> str:
        return self.meter.per_item(REPEATS, "request")


def _inbox(engine: Engine, events: int) -> None:
    """Processed events over 60 days, a few hundred pending and failed ones today."""
    pg = engine.dialect.name == "postgresql"
    payload = "CAST('{}' AS JSONB)" if pg else "'{}'"
    status = "CASE WHEN g % 1000 = 0 THEN 'failed' WHEN g % 997 = 0 THEN 'pending' ELSE 'done' END"
    error = "CASE WHEN g % 1000 = 0 THEN 'order.paid: unknown currency' END"
    received = _ago(engine, f"(g * 7919) % {60 * 86400}")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO inbox_events (source, dedupe_key, event_type, topic, shop, "
                "subject_id, occurred_at, received_at, payload, status, attempts, last_error) "
                "SELECT 'shopify', 'bench:' || g, 'order.paid', 'orders/paid', 'bench', "
                f"'o' || g, {received}, {received}, {payload}, {status}, 1, {error} "
                f"FROM {number_series(engine, events)}"
            )
        )


def _time(client: TestClient, url: str, path: str, status: int = 200) -> PageTiming:
    """Ask for ``path`` once to warm it (templates compiled, caches filled, as in a serving
    process), then ``REPEATS`` times; the CPU of this process (the app and the client) and of
    the database's backends meanwhile."""
    client.get(path, follow_redirects=False)
    gc.collect()  # the garbage of the pages before is not billed to this one
    times = []
    meter = CpuMeter().this_process("benchmark process").postgres("PostgreSQL", url)
    with meter:
        for _ in range(REPEATS):
            start = time.perf_counter()
            answer = client.get(path, follow_redirects=False)
            times.append((time.perf_counter() - start) * 1000)
            if answer.status_code != status:
                raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
    return PageTiming(path, statistics.median(times), max(times), meter)


@dataclass(frozen=True)
class PagesResult:
    backend: str
    touchpoints: int
    statistics: str
    command: str
    floor: PageTiming
    timings: list[PageTiming]


def run_pages_benchmark(*, url: str, touchpoints: int, reuse: bool = False) -> PagesResult:
    """Wipe, load and measure the shop (unless ``reuse``: a previous run's data), then time."""
    engine = make_engine(parse_database_url(url))
    try:
        factory = session_factory(engine)
        statistics = "as the run that loaded the data left them"
        if not reuse:
            fresh_schema(engine)
            load(engine, touchpoints)
            _inbox(engine, touchpoints // 2)
            statistics = analyze_as_production(url)
            with transaction(factory) as session:
                measure_outcomes(session, _config(), now=NOW)  # as the hourly DAG leaves it
        with factory() as session:
            customer = session.scalars(select(Customer).limit(1)).one()
            order = session.scalars(select(Order).limit(1)).one()
        app = create_pages_app(
            Settings(database_url=url, signing_secret=SecretStr("bench-link-signing-secret")),
            session_factory=factory,
            gatekeeper=_Everyone(),
            airflow=lambda: AirflowState(unavailable="not timed"),
            clock=lambda: NOW,
        )
        server = FastAPI()
        server.mount("/postpurchase/pages", app)
        paths = [
            "health",
            f"customers?q={customer.email}",
            f"customers?q={order.external_id}",
            f"customers/{customer.id}",
            "campaigns",
            "campaigns/review_request",
            "kpis",
        ]
        with TestClient(server, base_url="http://bench/postpurchase/pages/") as client:
            client.cookies.set("_token", "bench")
            timings = [_time(client, url, path) for path in paths]
            floor = _time(client, url, "", status=303)
    finally:
        engine.dispose()
    command = rerun_command("benchmarks.pages", f"--touchpoints {touchpoints}", *url_option(url))
    backend = parse_database_url(url).get_backend_name()
    return PagesResult(backend, touchpoints, statistics, command, floor, timings)


def markdown(result: PagesResult) -> str:
    n = result.touchpoints
    lines = [
        f"#### pages on {result.backend}: {n:,} touchpoints, {n * 3:,} provider "
        f"events, {n:,} orders, {n // 2:,} inbox events",
        "",
        f"Statistics: {result.statistics}. Rerun: {result.command}.",
        "",
        f"| page | median | slowest of {REPEATS} | CPU per request | load average before / after "
        f"| goal {GOAL_MS:.0f} ms |",
        "| --- | ---: | ---: | --- | --- | --- |",
    ]

    def row(name: str, t: PageTiming, goal: str) -> str:
        return (
            f"| {name} | {t.median_ms:.0f} ms | {t.slowest_ms:.0f} ms | {t.cpu} | "
            f"{t.meter.load_before} / {t.meter.load_after} | {goal} |"
        )

    lines.append(row("floor: the top route (a 303, no database, no template)", result.floor, "-"))
    for t in result.timings:
        lines.append(row(f"`{t.path}`", t, "met" if t.median_ms < GOAL_MS else "not met"))
    floor = sum(result.floor.meter.per_item_ms(REPEATS).values())
    lines += [
        "",
        f"The floor's {floor:.1f} ms of CPU per request (the test client, the mount, routing "
        "and the login dependency) is in every page's figure; the rest is the page's own work.",
    ]
    return "\n".join(lines)


def run(quick: bool) -> str:
    """``make bench``: SQLite at 100k touchpoints; PostgreSQL at 1M when
    POSTPURCHASE_BENCH_POSTGRES_URL is set (a tenth of each with ``quick``)."""
    scale = 10 if quick else 1
    sections = [INTRO]
    with tempfile.TemporaryDirectory() as folder:
        print("    pages on sqlite", flush=True)
        url = f"sqlite:///{folder}/b.db"
        sections.append(markdown(run_pages_benchmark(url=url, touchpoints=100_000 // scale)))
    pg = os.environ.get("POSTPURCHASE_BENCH_POSTGRES_URL")
    if pg:
        print("    pages on postgresql", flush=True)
        sections.append(markdown(run_pages_benchmark(url=pg, touchpoints=1_000_000 // scale)))
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pages", description=__doc__)
    parser.add_argument("--url", help="database to WIPE and use (default: SQLite in a temp folder)")
    parser.add_argument("--touchpoints", type=int, default=100_000)
    parser.add_argument(
        "--reuse", action="store_true", help="time on the data a previous run left at --url"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'bench.db'}"
        result = run_pages_benchmark(url=url, touchpoints=args.touchpoints, reuse=args.reuse)
    sys.stdout.write(markdown(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
