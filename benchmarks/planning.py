"""``planning``: purchase events drained from the inbox into touchpoints, as one DAG run does.

Each order has placed, paid, fulfilled and delivered events; the shipped campaigns plan five
touchpoints per order. The drain is timed as a DAG run does it: ``POSTPURCHASE_BENCH_DRAINERS``
processes (default 2, the DAG's ``drain_workers``; one on SQLite) each running
``process_inbox`` with the DAG's batch size, side by side. It is timed against a per-event
baseline measured in the same run on the same data shape: the same code in one process,
claiming and committing one event at a time, which is what a naive per-event ORM loop does.
Each drainer runs in a fresh process, so its peak RSS is its own; statements sent to the
database are counted (round trips per event). CPU is counted for the drainers (their own
process time) and for the rest of the machine while they run (``/proc/stat``: PostgreSQL, its
autovacuum workers, the kernel), which gives the most two cores can drain.

Settings (environment): ``POSTPURCHASE_BENCH_POSTGRES_URL``, a PostgreSQL database the
benchmark may wipe (default: a temporary SQLite file); ``POSTPURCHASE_BENCH_ORDERS``
(default 100,000 orders = 400,000 events, the size the goal is set for);
``POSTPURCHASE_BENCH_BASELINE_ORDERS`` (default 500); ``POSTPURCHASE_BENCH_DRAINERS``.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, event, func, insert, select, text

from postpurchase.campaigns.config import load_campaigns
from postpurchase.events import CanonicalEvent
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.processing.drain import BATCH_SIZE, process_inbox
from postpurchase.settings import PROJECT_ROOT, parse_database_url
from postpurchase.store import schema
from postpurchase.store.database import make_engine, session_factory
from postpurchase.store.models import Base, InboxEvent, Touchpoint

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", None]
KINDS = [
    ("order.placed", timedelta(0)),
    ("order.paid", timedelta(minutes=2)),
    ("order.fulfilled", timedelta(days=1)),
    ("order.delivered", timedelta(days=3)),
]


def _events(n: int) -> list[dict[str, Any]]:
    placed = START + timedelta(seconds=n * 7)
    customer = {
        "external_id": f"c{n // 2}",
        "email": f"customer{n // 2}@example.com",
        "first_name": "Sam",
        "time_zone": ZONES[n % len(ZONES)],
    }
    rows = []
    for kind, offset in KINDS:
        order = {
            "external_id": str(100_000 + n),
            "name": f"#{100_000 + n}",
            "currency": "USD",
            "total": "129.90",
            "subtotal": "129.90",
            "placed_at": placed.isoformat(),
            "updated_at": (placed + offset).isoformat(),
            "lines": [
                {
                    "external_id": f"{n}-1",
                    "title": "Grinder",
                    "product_type": "electronics",
                    "quantity": 1,
                    "unit_price": "99.90",
                },
                {
                    "external_id": f"{n}-2",
                    "title": "Beans",
                    "product_type": "coffee",
                    "quantity": 2,
                    "unit_price": "15.00",
                },
            ],
            "customer": customer,
        }
        payload = {"type": kind, "occurred_at": (placed + offset).isoformat(), "order": order}
        event = CanonicalEvent.model_validate(payload)
        rows.append(
            {
                "source": "shopify",
                "dedupe_key": f"bench:{n}:{kind}",
                "event_type": kind,
                "subject_id": order["external_id"],
                "occurred_at": event.occurred_at,
                "payload": event.as_payload(),
            }
        )
    return rows


def _reset(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    schema.upgrade(engine)


def _fill(engine: Engine, orders: int) -> int:
    total = 0
    chunk: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for n in range(orders):
            chunk += _events(n)
            if len(chunk) >= 4000 or n == orders - 1:
                conn.execute(insert(InboxEvent), chunk)
                total += len(chunk)
                chunk = []
    return total


def _drain(url: str, batch_size: int, start: Any, results: Any) -> None:
    """Child process, one drainer: drain the inbox once every drainer is ready; report its
    start and end (wall clock), events, planned touchpoints, statements sent and peak RSS."""
    engine = make_engine(parse_database_url(url))
    statements = 0

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    config = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
    # loyalty as the DAG applies it: award on paid, in the same transaction as planning
    loyalty = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    start.wait()
    began = time.time()
    cpu = time.process_time()
    summary = process_inbox(
        session_factory(engine),
        config,
        worker=f"bench:{os.getpid()}",
        shop_zone=ZoneInfo("UTC"),
        lease=timedelta(minutes=30),
        clock=lambda: datetime(2026, 6, 1, tzinfo=UTC),
        batch_size=batch_size,
        loyalty=loyalty,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put(
        {
            "began": began,
            "ended": time.time(),
            "events": sum(summary.events.values()),
            "planned": summary.planned,
            "failed": summary.failed,
            "statements": statements,
            "cpu": time.process_time() - cpu,
            "peak_mb": peak_kib / 1024,
        }
    )


_SUMMED = ("events", "planned", "failed", "statements", "cpu")


def _measure(url: str, batch_size: int, drainers: int) -> dict[str, Any]:
    """Drain with ``drainers`` processes at once, as a DAG run's mapped drain tasks do."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = context.Barrier(drainers + 1)  # the drainers, and this process counting CPU
    children = [
        context.Process(target=_drain, args=(url, batch_size, start, results))
        for _ in range(drainers)
    ]
    for child in children:
        child.start()
    start.wait()
    busy = _machine_busy()
    parts = [results.get() for _ in children]
    busy = _machine_busy() - busy
    for child in children:
        child.join()
    return {
        "seconds": max(p["ended"] for p in parts) - min(p["began"] for p in parts),
        **{key: sum(p[key] for p in parts) for key in _SUMMED},
        # the rest: PostgreSQL with its autovacuum workers, the kernel's loopback traffic
        "database_cpu": max(busy - sum(p["cpu"] for p in parts), 0.0),
        "peak_mb": max(p["peak_mb"] for p in parts),
    }


def _machine_busy() -> float:
    """CPU seconds this machine's cores have been busy so far, all processes and the kernel
    (``/proc/stat``: everything but idle and I/O wait)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run(quick: bool) -> str:
    """Drain a filled inbox batched and one event at a time; the Markdown section body."""
    default_orders = "1000" if quick else "100000"
    orders = int(os.environ.get("POSTPURCHASE_BENCH_ORDERS", default_orders))
    baseline_orders = int(os.environ.get("POSTPURCHASE_BENCH_BASELINE_ORDERS", "500"))
    drainers = int(os.environ.get("POSTPURCHASE_BENCH_DRAINERS", "2"))
    url = os.environ.get("POSTPURCHASE_BENCH_POSTGRES_URL")
    if not url:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='postpurchase-bench-')}/bench.db"
    engine = make_engine(parse_database_url(url))
    backend = engine.dialect.name

    _reset(engine)
    events = _fill(engine, orders)
    if backend != "postgresql":
        drainers = 1  # as the DAG does: SQLite has a single writer
    batched = _measure(url, BATCH_SIZE, drainers)
    with engine.connect() as conn:
        touchpoints = conn.execute(select(func.count()).select_from(Touchpoint)).scalar_one()

    _reset(engine)
    baseline_events = _fill(engine, baseline_orders)
    baseline = _measure(url, 1, 1)
    engine.dispose()

    rate = batched["events"] / batched["seconds"]
    client_us = batched["cpu"] / batched["events"] * 1e6
    database_us = batched["database_cpu"] / batched["events"] * 1e6
    cores = os.cpu_count() or 1
    ceiling = cores / ((client_us + database_us) / 1e6)
    trips = batched["statements"] / batched["events"]
    baseline_trips = baseline["statements"] / baseline["events"]
    baseline_rate = baseline["events"] / baseline["seconds"]
    summary = {
        "benchmark": "planning",
        "backend": backend,
        "orders": orders,
        "events": events,
        "touchpoints": touchpoints,
        "events_per_second": round(rate),
        "peak_rss_mb": round(batched["peak_mb"]),
        "round_trips_per_event": round(trips, 3),
        "failed": batched["failed"],
        "baseline_events": baseline_events,
        "baseline_events_per_second": round(baseline_rate),
        "baseline_peak_rss_mb": round(baseline["peak_mb"]),
        "baseline_round_trips_per_event": round(baseline_trips, 1),
        "speedup": round(rate / baseline_rate, 1),
        "drainer_cpu_us_per_event": round(client_us),
        "database_cpu_us_per_event": round(database_us),
    }
    print(f"    {summary}", flush=True)
    return (
        f"{orders:,} orders x 4 events ({events:,} events) drained into {touchpoints:,} "
        f"touchpoints on {backend} by {drainers} drainer process(es) side by side, in batches "
        f"of {BATCH_SIZE:,}, with loyalty applied as the DAG does "
        "(points awarded on payment, for the whole batch in its transaction).\n\n"
        "| run | events | events/s | round trips/event | peak RSS |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        f"| batched ({drainers} x `process_inbox`, {BATCH_SIZE:,} a claim) | {events:,} | "
        f"{rate:,.0f} | {trips:.3f} | {batched['peak_mb']:.0f} MB per drainer |\n"
        f"| baseline (same code, one event per claim and commit) | {baseline_events:,} | "
        f"{baseline_rate:,.0f} | {baseline_trips:.1f} | {baseline['peak_mb']:.0f} MB |\n\n"
        f"Ratio: {rate / baseline_rate:.1f}x the per-event baseline. Goal: 10,000 events/s "
        f"({'met' if rate >= 10_000 else 'not met'}) with memory that stays flat.\n\n"
        f"CPU per event: {client_us:.0f} us in the drainers (all of them) and {database_us:.0f} us "
        "in the rest of the machine while they ran (PostgreSQL with its autovacuum, the kernel), "
        "so this machine's "
        f"{cores} core(s) drain at most about {ceiling:,.0f} events/s when nothing else runs; "
        f"10,000 events/s here needs at most {cores / 10_000 * 1e6:.0f} us per event, "
        "database included.\n"
    )
