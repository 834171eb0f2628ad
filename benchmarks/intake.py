"""Benchmark ``intake``: signed Shopify ``orders/create`` webhooks into the inbox.

What runs, one server at a time: the floor (``benchmarks.minimal_endpoint``, a FastAPI route
that reads the body and answers 202, under the same server code and settings), then
``postpurchase serve`` on 127.0.0.1 (uvicorn, ``WORKERS`` processes) with a load generator on
loopback posting distinct signed webhooks at concurrency 32 plus 10% duplicate deliveries,
shuffled; on SQLite and, when ``POSTPURCHASE_BENCH_POSTGRES_URL`` names a database the
benchmark may wipe, on PostgreSQL. Then the naive baseline in the same run: one Airflow
REST call per webhook (``POST /api/v2/dags/{id}/dagRuns``, the order as ``conf``) against a
real ``airflow api-server`` started here on a throwaway SQLite metadata database, one call at
a time (its best case there). The baseline's load generator calls Airflow directly, leaving
out the webhook handling a naive intake would also do, so it flatters the baseline.

Run one path alone: ``python -m benchmarks.intake --path floor|sqlite|postgresql|naive``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from benchmarks.databases import fresh_schema
from benchmarks.harness import NOT_ANALYZED, CpuMeter, rerun_command
from benchmarks.loadgen import LoadResult, Server, ServerUsage, free_port, post_bytes, run_load
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine
from postpurchase.store.models import InboxEvent
from postpurchase.webhooks.signatures import base64_digest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ROOT / "tests" / "fixtures" / "shopify" / "orders_create.json"
SECRET = "bench-shopify-secret"
SHOP = "bench-shop.myshopify.com"
CONCURRENCY = 32
# Airflow's SQLite metadata database serialises writers: concurrent triggers fail with 500
# ("database is locked") or wait for seconds. One at a time is the baseline's best case.
NAIVE_CONCURRENCY = 1
WORKERS = int(os.environ.get("POSTPURCHASE_BENCH_WORKERS", "2"))
BIN = Path(sys.executable).parent
PATHS = ("floor", "sqlite", "postgresql", "naive")
FLOOR = "floor: minimal FastAPI endpoint"
ROLES = ("server", "load generator", "PostgreSQL backends")


def _triggered_at() -> str:
    # As Shopify writes it in captured deliveries: UTC, nanoseconds, "Z"
    # (e.g. "2025-03-11T20:54:30.516267807Z").
    now = datetime.now(UTC)
    return f"{now:%Y-%m-%dT%H:%M:%S.%f}{random.randrange(1000):03d}Z"


def _webhooks(port: int, count: int, prefix: str) -> list[tuple[str, bytes]]:
    """(event id, request bytes) for ``count`` distinct orders/create deliveries."""
    template = json.loads(ORDER.read_text())
    out = []
    for n in range(count):
        # Each order its own customer, as in a real shop: checks that cache what they saw (an
        # address's validation, say) must not get a free ride from repeated values.
        email = f"c{n}@example.com"
        customer = dict(
            template["customer"],
            id=7_000_000 + n,
            email=email.capitalize(),
            phone=f"+1514{5_550_000 + n % 1_000_000:07d}",
        )
        order = dict(
            template,
            id=10_000_000 + n,
            name=f"#{prefix}{n}",
            email=email,
            contact_email=email,
            customer=customer,
        )
        # As Shopify writes a body: compact, and characters beyond ASCII as they are (the
        # captured delivery in tests/fixtures/genuine/shopify/dev_store_aud_orders_create.json)
        body = json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode()
        event_id = f"{prefix}-{n}-{uuid.uuid4()}"
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": base64_digest(body, SECRET),
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-API-Version": "2025-10",
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": _triggered_at(),
            "X-Shopify-Event-Id": event_id,
        }
        out.append((event_id, post_bytes(port, "/webhooks/shopify", body, headers)))
    return out


def _fresh_database(url: str) -> None:
    engine = make_engine(parse_database_url(url))
    fresh_schema(engine)
    engine.dispose()


def _inbox_count(url: str) -> int:
    engine = make_engine(parse_database_url(url))
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(InboxEvent)).scalar_one()
    engine.dispose()
    return int(count)


@dataclass
class Measured:
    """One line of the table: a load run against one server."""

    path: str
    result: LoadResult
    ok_status: int
    meter: CpuMeter | None
    peak_mib: float | None
    stored: str = "-"


def _load_server(
    command: list[str], env: dict[str, str], port: int, workdir: Path, url: str, distinct: int
) -> tuple[LoadResult, CpuMeter, float]:
    """Start a server, warm it up, post ``distinct`` deliveries and 10% duplicates; stop it."""
    deliveries = [raw for _, raw in _webhooks(port, distinct, "bench")]
    server = Server(command, env, workdir / "serve.log")
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/webhooks/health", timeout=60)
        run_load(port, [raw for _, raw in _webhooks(port, 300, "warm")], CONCURRENCY)
        rng = random.Random(2026)
        requests = deliveries + rng.sample(deliveries, len(deliveries) // 10)
        rng.shuffle(requests)
        meter = CpuMeter().process_tree("server", server.process.pid)
        meter.this_process("load generator").postgres("PostgreSQL backends", url)
        with ServerUsage(server.process.pid) as usage, meter:
            result = run_load(port, requests, CONCURRENCY)
    finally:
        server.stop()
    return result, meter, usage.peak_mib


def _intake(name: str, url: str, distinct: int, workdir: Path) -> Measured:
    _fresh_database(url)
    port = free_port()
    env = {
        **os.environ,
        "POSTPURCHASE_DATABASE_URL": url,
        "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET": SECRET,
        # PostgreSQL: serve refuses to start without the shared link-signing secret.
        "POSTPURCHASE_SIGNING_SECRET": "link-signing-secret-for-tests-0123456789",
    }
    command = [str(BIN / "postpurchase"), "serve", "--port", str(port)]
    command += ["--workers", str(WORKERS), "--no-access-log"]
    result, meter, peak = _load_server(command, env, port, workdir, url, distinct)
    stored = f"{_inbox_count(url) - 300:,} of {distinct:,}"
    return Measured(f"intake, {name}", result, 202, meter, peak, stored)


def _minimal(distinct: int, workdir: Path) -> Measured:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.minimal_endpoint", str(port), str(WORKERS)]
    result, meter, peak = _load_server(command, dict(os.environ), port, workdir, "", distinct)
    return Measured(FLOOR, result, 202, meter, peak)


NAIVE_DAG = '''
"""One run per webhook: the naive design the intake benchmark compares against."""
from airflow.sdk import dag, task


@dag(dag_id="naive_intake", schedule=None, catchup=False)
def naive_intake():
    @task
    def handle(**context):
        return None

    handle()


naive_intake()
'''


def _naive(triggers: int, workdir: Path) -> Measured:
    home = workdir / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "naive_intake.py").write_text(NAIVE_DAG)
    password = "bench-password"
    (home / "passwords.json").write_text(json.dumps({"bench": password}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "bench:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
    }
    airflow = str(BIN / "airflow")
    for step in (["db", "migrate"], ["dags", "reserialize"]):
        done = subprocess.run([airflow, *step], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(step)} failed:\n{done.stderr[-3000:]}")
    port = free_port()
    command = [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    server = Server(command, env, workdir / "api-server.log")
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/api/v2/version", timeout=120)
        token = httpx.post(
            f"http://127.0.0.1:{port}/auth/token",
            json={"username": "bench", "password": password},
            timeout=30,
        ).json()["access_token"]
        order = json.loads(ORDER.read_text())

        def trigger(n: int) -> bytes:
            body = json.dumps(
                {"dag_run_id": f"webhook-{n}", "logical_date": None, "conf": {"order": order}}
            ).encode()
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            return post_bytes(port, "/api/v2/dags/naive_intake/dagRuns", body, headers)

        run_load(port, [trigger(-n) for n in range(1, 11)], NAIVE_CONCURRENCY)  # warm-up
        result = run_load(port, [trigger(n) for n in range(triggers)], NAIVE_CONCURRENCY)
        return Measured("naive: Airflow REST trigger per webhook", result, 200, None, None)
    finally:
        server.stop()


def _row(line: Measured, command: str) -> str:
    result = line.result
    sent = sum(result.statuses.values())
    others = {s: n for s, n in result.statuses.items() if s not in (line.ok_status, 200)}
    cpu = line.meter.per_item_ms(sent) if line.meter else {}
    cells = [f"{cpu[role]:.3f}" if role in cpu else "-" for role in ROLES]
    memory = f"{line.peak_mib:,.0f}" if line.peak_mib else "-"
    return (
        f"| {line.path} | {sent:,} | {result.statuses[line.ok_status]:,} "
        f"| {result.rate(line.ok_status):,.1f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} "
        f"| {memory} | {' | '.join(cells)} | {line.stored} | {others or 'none'} | {command} |"
    )


def measure(paths: list[str], quick: bool) -> dict[str, Measured]:
    """Run the named ``PATHS`` one after the other (each server alone on the machine)."""
    distinct = 2_000 if quick else 20_000
    postgres = os.environ.get("POSTPURCHASE_BENCH_POSTGRES_URL")
    measured: dict[str, Measured] = {}
    with tempfile.TemporaryDirectory(prefix="postpurchase-bench-") as tmp:
        workdir = Path(tmp)
        for path in paths:
            print(
                f"    {path}: {rerun_command(*_args(path, quick), postgres=path == 'postgresql')}"
            )
            started = time.perf_counter()
            if path == "floor":
                measured[path] = _minimal(distinct, workdir)
            elif path == "sqlite":
                measured[path] = _intake(
                    "SQLite", f"sqlite:///{workdir / 'bench.db'}", distinct, workdir
                )
            elif path == "postgresql" and postgres:
                measured[path] = _intake("PostgreSQL", postgres, distinct, workdir)
            elif path == "naive":
                measured[path] = _naive(30 if quick else 150, workdir)
            else:
                print("    ... skipped: set POSTPURCHASE_BENCH_POSTGRES_URL")
                continue
            line = measured[path]
            print(
                f"    ... {line.result.rate(line.ok_status):,.0f}/s, p99 "
                f"{line.result.p99_ms:.1f} ms ({time.perf_counter() - started:.0f} s in all)"
            )
    return measured


def _args(path: str, quick: bool) -> list[str]:
    return ["benchmarks.intake", "--path", path, *(["--quick"] if quick else [])]


def markdown(measured: dict[str, Measured], quick: bool) -> str:
    distinct = 2_000 if quick else 20_000
    rows = [
        _row(line, rerun_command(*_args(path, quick), postgres=path == "postgresql"))
        for path, line in measured.items()
    ]
    lines = [
        f"{distinct:,} distinct signed Shopify `orders/create` webhooks (the 7.6 KB order "
        f"fixture, 3 line items) plus {distinct // 10:,} duplicate deliveries, shuffled, at "
        f"concurrency {CONCURRENCY} over keep-alive connections on loopback, against "
        f"`postpurchase serve --workers {WORKERS} --no-access-log`; 300 warm-up webhooks "
        "first, not counted. The floor is a FastAPI app that reads the body and answers 202, "
        "served by the same code with the same settings and sent the same requests. The naive "
        f"baseline: `POST /api/v2/dags/naive_intake/dagRuns` calls (the order as `conf`) "
        "against `airflow api-server --workers 1` on its default SQLite metadata database, "
        f"one at a time (its best case: at concurrency {CONCURRENCY} it answered 500 'database "
        "is locked'). Each server runs alone, one after the other, in the same run; the load "
        f"generator shares the machine's cores with it. Statistics: {NOT_ANALYZED} (the inbox "
        "starts empty and is only inserted into, under its unique dedupe key).",
        "",
        "CPU per request is user + system time of every process involved: the server (all its "
        "workers), the load generator (this benchmark's process, with its samplers) and the "
        "PostgreSQL backends of the run's database (its shared WAL writer and checkpointer are "
        "not counted: other databases use them). On a machine shared with other work, the rates "
        "move with the load; CPU per request moves much less, but it rises too once the load "
        "average is well above the core count (caches, shared cores): compare the lines of one "
        "run, not runs made under different loads. Server peak MiB is the resident memory of "
        "all the server's processes together (the supervisor, its workers and their helpers), "
        "the highest of its samples every tenth of a second.",
        "",
        "| path | requests | accepted | accepted/s | p50 ms | p99 ms | server peak MiB "
        "| server CPU ms/req | load generator CPU ms/req | PostgreSQL CPU ms/req | inbox rows "
        "| other answers | rerun |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
        *rows,
        "",
    ]
    for path, line in measured.items():
        if line.meter:
            lines.append(
                f"Load average while {path} ran: {line.meter.load_before} at its start, "
                f"{line.meter.load_after} at its end."
            )
    lines.append("")
    lines += _verdicts(measured)
    return "\n".join(lines)


def _server_ms(line: Measured) -> float:
    assert line.meter is not None
    return line.meter.per_item_ms(sum(line.result.statuses.values()))["server"]


def _verdicts(measured: dict[str, Measured]) -> list[str]:
    out = []
    best = measured.get("postgresql") or measured.get("sqlite")
    floor = measured.get("floor")
    if best and floor:
        out.append(
            f"Ratio, server CPU per request of the intake ({best.path}) to the floor's: "
            f"**{_server_ms(best) / _server_ms(floor):.1f}x** ({_server_ms(best):.3f} ms vs "
            f"{_server_ms(floor):.3f} ms); accepted/s {best.result.rate(202):,.0f} vs the "
            f"floor's {floor.result.rate(202):,.0f}/s "
            f"({best.result.rate(202) / floor.result.rate(202):.2f})."
        )
    naive = measured.get("naive")
    if best and naive and naive.result.rate(200):
        out.append(
            f"Against the naive path: {best.result.rate(202) / naive.result.rate(200):,.0f}x "
            f"({best.result.rate(202):,.0f} vs {naive.result.rate(200):,.1f} webhooks/s)."
        )
    pg = measured.get("postgresql")
    if pg:
        rate, p99, cpu = pg.result.rate(202), pg.result.p99_ms, _server_ms(pg)
        out.append(
            "Goals (PostgreSQL, this 2-core machine): 5,000 accepted/s: "
            f"{'met' if rate >= 5000 else 'not met'} ({rate:,.0f}); p99 under 50 ms: "
            f"{'met' if p99 < 50 else 'not met'} ({p99:.1f} ms); server CPU at most 0.2 ms per "
            f"request: {'met' if cpu <= 0.2 else 'not met'} ({cpu:.3f} ms)."
        )
    else:
        out.append("PostgreSQL was not measured: set POSTPURCHASE_BENCH_POSTGRES_URL.")
    return [line for item in out for line in (item, "")]


def run(quick: bool) -> str:
    """``make bench``: every path, the floor first, in one run."""
    return markdown(measure(list(PATHS), quick), quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", action="append", choices=PATHS, help="default: all")
    parser.add_argument("--quick", action="store_true", help="2,000 webhooks, not 20,000")
    args = parser.parse_args()
    sys.stdout.write(markdown(measure(args.path or list(PATHS), args.quick), args.quick))


if __name__ == "__main__":
    main()
