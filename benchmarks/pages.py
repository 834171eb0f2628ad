"""Benchmark ``pages``: how long each page of the Airflow UI pages takes to answer.

Loads the ``outcomes`` benchmark's shop (``touchpoints`` touchpoints over 60 days, three
provider events each, as many paid orders, half as many customers), runs the outcome refresh
once (as the hourly DAG would have), adds an inbox of processed, pending and failed events,
then asks each page through the pages' app in this process, several times, and reports the
median and the slowest answer. The login check is left out (it is Airflow's: one JWT
decode and one lookup of revoked tokens); the database work and the rendering are in.

Goal: every page under 300 ms with 1M touchpoints on PostgreSQL. The what-if page is not
timed here: it replays days of history on purpose (``campaigns simulate`` shows its progress).

Entry points: ``run(quick)`` for ``make bench``; ``python -m benchmarks.pages --help``.
"""

from __future__ import annotations

import argparse
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

from benchmarks.outcomes import NOW, _ago, _config, _reset, _series, load
from postpurchase.pages.airflow_runs import AirflowState
from postpurchase.pages.app import create_pages_app
from postpurchase.pages.auth import PageUser
from postpurchase.settings import Settings, parse_database_url
from postpurchase.store.database import make_engine, session_factory, transaction
from postpurchase.store.models import Customer, Order
from postpurchase.tasks.outcomes import measure_outcomes

GOAL_MS = 300.0
REPEATS = 7


class _Everyone:
    """Lets every request in as an Op: the benchmark times the pages, not Airflow's login."""

    async def user_for(self, token: str) -> PageUser:
        return PageUser(name="bench", may_act=True, token=token)


@dataclass(frozen=True)
class PageTiming:
    path: str
    median_ms: float
    slowest_ms: float


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
                f"FROM {_series(engine, events)}"
            )
        )
        if pg:
            conn.execute(text("ANALYZE"))


def _time(client: TestClient, path: str) -> PageTiming:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
    return PageTiming(path, statistics.median(times), max(times))


def run_pages_benchmark(
    *, url: str, touchpoints: int, reuse: bool = False
) -> tuple[str, list[PageTiming]]:
    """Wipe, load and measure the shop (unless ``reuse``: a previous run's data), then time."""
    engine = make_engine(parse_database_url(url))
    try:
        factory = session_factory(engine)
        if not reuse:
            _reset(engine)
            load(engine, touchpoints)
            _inbox(engine, touchpoints // 2)
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
            client.get("health")  # warm: templates compiled, connections open
            timings = [_time(client, path) for path in paths]
    finally:
        engine.dispose()
    return parse_database_url(url).get_backend_name(), timings


def markdown(backend: str, touchpoints: int, timings: list[PageTiming]) -> str:
    lines = [
        f"#### pages on {backend}: {touchpoints:,} touchpoints, {touchpoints * 3:,} provider "
        f"events, {touchpoints:,} orders, {touchpoints // 2:,} inbox events",
        "",
        f"| page | median | slowest of {REPEATS} | goal {GOAL_MS:.0f} ms |",
        "| --- | --- | --- | --- |",
    ]
    for t in timings:
        met = "met" if t.median_ms < GOAL_MS else "not met"
        lines.append(f"| `{t.path}` | {t.median_ms:.0f} ms | {t.slowest_ms:.0f} ms | {met} |")
    return "\n".join(lines)


def run(quick: bool) -> str:
    """``make bench``: SQLite at 100k touchpoints; PostgreSQL at 1M when
    POSTPURCHASE_BENCH_POSTGRES_URL is set (a tenth of each with ``quick``)."""
    scale = 10 if quick else 1
    sections = []
    with tempfile.TemporaryDirectory() as folder:
        print("    pages on sqlite", flush=True)
        n = 100_000 // scale
        backend, timings = run_pages_benchmark(url=f"sqlite:///{folder}/b.db", touchpoints=n)
        sections.append(markdown(backend, n, timings))
    pg = os.environ.get("POSTPURCHASE_BENCH_POSTGRES_URL")
    if pg:
        print("    pages on postgresql", flush=True)
        n = 1_000_000 // scale
        backend, timings = run_pages_benchmark(url=pg, touchpoints=n)
        sections.append(markdown(backend, n, timings))
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
        backend, timings = run_pages_benchmark(
            url=url, touchpoints=args.touchpoints, reuse=args.reuse
        )
    sys.stdout.write(markdown(backend, args.touchpoints, timings) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
