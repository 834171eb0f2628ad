"""Benchmark ``rewards``: redemptions through the storefront API against a slow platform.

What runs: ``postpurchase serve`` on 127.0.0.1 (``WORKERS`` uvicorn processes, a fresh engine
database with ``customers`` customers of 600 points each: PostgreSQL when
``POSTPURCHASE_BENCH_POSTGRES_URL`` names one it may wipe, else SQLite) configured for Shopify; the
fake Shopify Admin GraphQL API in its own process, answering every request after
``LATENCY`` (50 ms) as a real platform's round trip would take. The load generator sends
app-proxy-signed ``POST /storefront/proxy/redeem`` requests, one redemption of the 500-point
reward per customer, ``CONCURRENCY`` (50) at a time, over keep-alive connections.

Each redemption: verify the signature, find the customer, rate check, debit the ledger in one
transaction, create the discount code on the platform (one GraphQL call), record it in a
second transaction. The baseline, in the same run: the same number of
``discountCodeBasicCreate`` calls straight to the fake at the same concurrency (the
platform's own latency, which no redemption can beat). Reported: p50/p99 of both and the
ratio; goal p99 under 200 ms. The fake platform (``benchmarks.fake_platform``) and the load
generator run on asyncio, so they take little of the cores the server needs; the CPU time per
redemption of every process (server, its PostgreSQL backends, the fake, the load generator)
and the load average are reported for both paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, select

from benchmarks.databases import fresh_schema
from benchmarks.harness import CpuMeter
from benchmarks.loadgen import LoadResult, Server, ServerUsage, free_port, post_bytes, run_load
from postpurchase.loyalty.ledger import adjust
from postpurchase.rewards.storefront import proxy_signature
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine, session_factory, transaction
from postpurchase.store.models import Customer, Redemption, RedemptionStatus

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-app-secret"
SHOP = "bench-shop.myshopify.com"
POSTGRES_ENV = "POSTPURCHASE_BENCH_POSTGRES_URL"
TOKEN = "shpat_0123456789abcdef0123456789abcdef"  # the fake's token
LATENCY = 0.05
CONCURRENCY = 50
WORKERS = int(os.environ.get("POSTPURCHASE_BENCH_WORKERS", "2"))
BIN = Path(sys.executable).parent


def _seed(url: str, customers: int) -> None:
    engine = make_engine(parse_database_url(url))
    fresh_schema(engine)
    with transaction(session_factory(engine)) as session:
        for n in range(customers):
            customer = Customer(
                source="shopify",
                shop=SHOP,
                external_id=str(8_100_000 + n),
                email=f"bench{n}@example.com",
            )
            session.add(customer)
            session.flush()
            adjust(session, customer_id=customer.id, points=600, reason="bench")
    engine.dispose()


def _redeem_requests(port: int, first: int, count: int) -> list[bytes]:
    stamp = str(int(time.time()))
    requests = []
    for n in range(first, first + count):
        params = {
            "shop": SHOP,
            "logged_in_customer_id": str(8_100_000 + n),
            "path_prefix": "/apps/rewards",
            "timestamp": stamp,
        }
        params["signature"] = proxy_signature(params.items(), SECRET.encode())
        body = json.dumps({"reward": "five_off", "key": f"bench-{n}"}).encode()
        path = f"/storefront/proxy/redeem?{urlencode(params)}"
        requests.append(post_bytes(port, path, body, {"Content-Type": "application/json"}))
    return requests


def _platform_requests(port: int, count: int) -> list[bytes]:
    query = "mutation Create($input: DiscountCodeBasicInput!) { discountCodeBasicCreate(basicCodeDiscount: $input) { codeDiscountNode { id } userErrors { field code message } } }"  # noqa: E501
    requests = []
    for n in range(count):
        variables = {
            "input": {
                "title": "baseline",
                "code": f"BASELINE-{n}",
                "startsAt": "2026-12-01T00:00:00+00:00",
                "endsAt": "2026-12-31T00:00:00+00:00",
                "usageLimit": 1,
                "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}},
            }
        }
        body = json.dumps({"query": query, "variables": variables}).encode()
        headers = {"Content-Type": "application/json", "X-Shopify-Access-Token": TOKEN}
        requests.append(post_bytes(port, "/admin/api/2025-10/graphql.json", body, headers))
    return requests


@dataclass
class Measured:
    result: LoadResult
    meter: CpuMeter


@dataclass
class Run:
    redemptions: Measured
    baseline: Measured
    peak_mib: float
    issued: int


def _platform_alone(fake_pid: int, fake_port: int, count: int) -> Measured:
    requests = _platform_requests(fake_port, count)
    meter = CpuMeter().process_tree("fake platform", fake_pid).this_process("load generator")
    with meter:
        result = run_load(fake_port, requests, CONCURRENCY)
    return Measured(result, meter)


def _redemptions(server: Server, url: str, fake_pid: int, port: int, count: int) -> Measured:
    requests = _redeem_requests(port, 0, count)
    meter = CpuMeter().process_tree("server", server.process.pid)
    meter.postgres("PostgreSQL backends", url).process_tree("fake platform", fake_pid)
    meter.this_process("load generator")
    with meter:
        result = run_load(port, requests, CONCURRENCY)
    return Measured(result, meter)


def measure(count: int) -> Run:
    """``count`` redemptions and as many calls to the platform alone, in one run."""
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    warm = 100
    with tempfile.TemporaryDirectory(prefix="postpurchase-bench-rewards-") as tmp:
        workdir = Path(tmp)
        url = os.environ.get(POSTGRES_ENV) or f"sqlite:///{workdir / 'bench.db'}"
        _seed(url, count + warm)
        fake = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fake_platform", str(LATENCY)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert fake.stdout is not None
            fake_url = fake.stdout.readline().strip()
            fake_port = int(fake_url.rsplit(":", 1)[1])
            baseline = _platform_alone(fake.pid, fake_port, count)
            port = free_port()
            env = {
                **os.environ,
                "POSTPURCHASE_DATABASE_URL": url,
                "POSTPURCHASE_SIGNING_SECRET": "bench-signing-secret",
                "POSTPURCHASE_VAR_DIR": str(workdir / "var"),
                "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET": SECRET,
                "POSTPURCHASE_REWARDS_PLATFORM": "shopify",
                "POSTPURCHASE_SHOPIFY_SHOP_DOMAIN": SHOP,
                "POSTPURCHASE_SHOPIFY_ADMIN_TOKEN": TOKEN,
                "POSTPURCHASE_SHOPIFY_ADMIN_URL": fake_url,
            }
            command = [str(BIN / "postpurchase"), "serve", "--port", str(port)]
            command += ["--workers", str(WORKERS), "--no-access-log"]
            server = Server(command, env, workdir / "serve.log")
            try:
                server.wait_ready(f"http://127.0.0.1:{port}/webhooks/health", timeout=60)
                run_load(port, _redeem_requests(port, count, warm), CONCURRENCY)
                with ServerUsage(server.process.pid) as usage:
                    redemptions = _redemptions(server, url, fake.pid, port, count)
            finally:
                server.stop()
        finally:
            if fake.stdin:
                fake.stdin.close()
            fake.wait(timeout=30)
        engine = make_engine(parse_database_url(url))
        with transaction(session_factory(engine)) as session:
            issued = session.scalar(
                select(func.count())
                .select_from(Redemption)
                .where(Redemption.status == RedemptionStatus.ISSUED)
            )
        engine.dispose()
    return Run(redemptions, baseline, usage.peak_mib, int(issued or 0) - warm)


ROLES = ("server", "PostgreSQL backends", "fake platform", "load generator")


def _row(path: str, measured: Measured) -> str:
    result = measured.result
    sent = sum(result.statuses.values())
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(result.statuses.items()))
    cpu = measured.meter.per_item_ms(sent)
    cells = " | ".join(f"{cpu[role]:.2f}" if role in cpu else "-" for role in ROLES)
    return (
        f"| {path} | {sent:,} | {statuses} | {sent / result.wall_seconds:,.1f} | "
        f"{result.percentile(0.5) * 1000:.1f} | {result.percentile(0.99) * 1000:.1f} | "
        f"{cells} | {sum(cpu.values()):.2f} |"
    )


def markdown(count: int, run: Run) -> str:
    result, baseline = run.redemptions.result, run.baseline.result
    p99, base_p99 = result.percentile(0.99) * 1000, baseline.percentile(0.99) * 1000
    server_ms = run.redemptions.meter.per_item_ms(count)["server"]
    return "\n".join(
        [
            f"Command: `python -m benchmarks rewards`. {count:,} redemptions (one 500-point "
            f"reward per customer of 600 points) through the storefront API "
            f"(`POST /storefront/proxy/redeem`, app-proxy signed) at concurrency {CONCURRENCY}, "
            f"against `postpurchase serve --workers {WORKERS}` on "
            f"{'PostgreSQL' if os.environ.get(POSTGRES_ENV) else 'SQLite'}; the platform is the "
            f"fake Shopify Admin GraphQL API in its own process (asyncio), answering after "
            f"{LATENCY * 1000:.0f} ms. 100 warm-up redemptions first, not counted. Baseline in "
            f"the same run: {count:,} `discountCodeBasicCreate` calls straight to the fake at "
            f"the same concurrency. CPU is user + system time per request of each process "
            f"(PostgreSQL: the run's own backends; the load generator's includes the sampling "
            f"of the others); rates and tails also move with the machine's other users.",
            "",
            "| path | requests | answers | per s | p50 ms | p99 ms | CPU ms: server | "
            "PostgreSQL | fake platform | load generator | total |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            _row("redemption via storefront API", run.redemptions),
            _row("platform alone (baseline)", run.baseline),
            "",
            f"Load average: {run.baseline.meter.load_before} before the baseline, "
            f"{run.redemptions.meter.load_before} before the redemptions, "
            f"{run.redemptions.meter.load_after} after them.",
            "",
            f"Codes issued: {run.issued:,} of {count:,}. Ratio of p99 to the platform's own "
            f"p99: **{p99 / base_p99:.2f}x** ({p99 - base_p99:.1f} ms of our own at the tail). "
            f"Server CPU per redemption: {server_ms:.2f} ms; peak memory {run.peak_mib:.0f} "
            f"MiB. Goal p99 under 200 ms: {'met' if p99 < 200 else 'not met'} ({p99:.1f} ms).",
        ]
    )


def run(quick: bool) -> str:
    """``make bench``: the Markdown body of the rewards section."""
    count = 300 if quick else 2_000
    return markdown(count, measure(count))


if __name__ == "__main__":
    sys.stdout.write(run(quick="--quick" in sys.argv) + "\n")
