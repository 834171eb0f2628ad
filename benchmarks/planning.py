"""``planning``: purchase events drained from the inbox into touchpoints, as one DAG run does.

Each order is the genuine Shopify order of tests/fixtures/shopify/orders_create.json as the
webhook intake normalises it, under its own ids, name, times, street and phone, two orders per
customer; it has placed, paid, fulfilled and delivered events, stored by intake's own insert
(``add_many_to_inbox``: payloads as intake writes them). The shipped campaigns and loyalty
settings apply (points on payment, touchpoints on delivery and payment, the win-back cancel on
each new order). ``POSTPURCHASE_BENCH_DRAINERS`` processes (default 2, the DAG's
``drain_workers``; one on SQLite) each run ``process_inbox`` with the DAG's batch size, side by
side, on tables that have no planner statistics unless ``POSTPURCHASE_BENCH_ANALYZE=1`` (then
they are analysed after loading, as autovacuum would). Measured in the same run, on the same
events:

- the ceiling (PostgreSQL only): as many processes doing the same writes in as few and as lean
  statements as PostgreSQL allows (``benchmarks.planning_ceiling``), the values extracted from
  each payload by the ceiling's own processes (a plain JSON decode, nothing validated), as the
  drain's are; the drain's rate over it says how much is left;
- the baseline: the same code claiming and committing one event at a time (a naive loop).

Reported: events/s over the whole backlog and in each tenth of it, with the CPU per event of
the drainers and the database in that tenth (a rate that falls while CPU per event stays flat
is the machine; CPU per event that grows as the tables grow is a plan or an index going
wrong), CPU per event of the drainers and of the database's backends over the whole run
(``benchmarks.harness.CpuMeter``; the stable figure on a shared machine), resident memory
per drainer at the first tenth and at the end, statements per event.

Settings (environment): ``POSTPURCHASE_BENCH_POSTGRES_URL``, a PostgreSQL database the
benchmark may wipe (default: a temporary SQLite file); ``POSTPURCHASE_BENCH_ORDERS`` (default
250,000 orders = 1,000,000 events); ``POSTPURCHASE_BENCH_BASELINE_ORDERS`` (default 100);
``POSTPURCHASE_BENCH_DRAINERS``; ``POSTPURCHASE_BENCH_ANALYZE``.
"""

from __future__ import annotations

import copy
import functools
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import Engine, event, func, select, text

from benchmarks import planning_ceiling
from benchmarks.databases import fresh_schema
from benchmarks.harness import NOT_ANALYZED, SAMPLE_SECONDS, CpuMeter, analyze, rerun_command
from postpurchase.campaigns.config import load_campaigns
from postpurchase.events import CanonicalEvent, OrderSnapshot, address_key
from postpurchase.inbox import InboxEntry, add_many_to_inbox
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.platforms import shopify
from postpurchase.processing.drain import BATCH_SIZE, process_batch, process_inbox
from postpurchase.settings import PROJECT_ROOT, parse_database_url
from postpurchase.store.database import make_engine, session_factory
from postpurchase.store.models import Touchpoint

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# Shopify writes an order's times in its shop's offset ("2026-11-20T09:14:03-05:00" in
# tests/fixtures/shopify/orders_create.json), and the canonical events keep it.
SHOP_ZONE = ZoneInfo("America/New_York")
KINDS = [
    ("order.placed", timedelta(0)),
    ("order.paid", timedelta(minutes=2)),
    ("order.fulfilled", timedelta(days=1)),
    ("order.delivered", timedelta(days=3)),
]
# Every order is this genuine one as the webhook intake normalises it, with all it carries
# (product and variant ids, SKUs, taxes, discount codes, a phone, consent, tags): what the
# drain does with an event depends on them.
GENUINE_ORDER = PROJECT_ROOT / "tests" / "fixtures" / "shopify" / "orders_create.json"


@functools.cache
def _genuine() -> tuple[OrderSnapshot, dict[str, Any]]:
    """The genuine order as the webhook intake normalises it, and as its inbox payload has it."""
    data = json.loads(GENUINE_ORDER.read_text(encoding="utf-8"))
    event = shopify.normalise("orders/create", data, received_at=START)
    assert event is not None and event.order is not None  # an order topic
    return event.order, event.as_payload()["order"]


def _moved(stamp: str, by: timedelta) -> str:
    """A time of the genuine order, ``by`` later, in its shop's offset."""
    return (datetime.fromisoformat(stamp) + by).astimezone(SHOP_ZONE).isoformat()


def _order(n: int) -> dict[str, Any]:
    """Order ``n``: the genuine one under its own ids, name and shipping street, placed 7 s
    after order ``n - 1``; its customer (two orders each) under their own id, email and phone.
    Everything else, times apart, is the genuine order's."""
    genuine = _genuine()[1]
    shift = START + timedelta(seconds=n * 7) - datetime.fromisoformat(genuine["placed_at"])
    order = copy.deepcopy(genuine)
    customer = order["customer"]
    order.update(
        external_id=str(int(genuine["external_id"]) + n),
        name=f"#{100_000 + n}",
        # each customer's own street (referral checks compare customers' addresses)
        shipping_address_key=address_key(f"{1280 + n // 2} Rue Sherbrooke O", "H3G 1H4", "CA"),
        placed_at=_moved(genuine["placed_at"], shift),
        updated_at=_moved(genuine["updated_at"], shift),
        # a line's platform id is unique across orders; the genuine ones are < 100,000 apart
        lines=[
            {**line, "external_id": str(int(line["external_id"]) + 100_000 * n)}
            for line in genuine["lines"]
        ],
    )
    customer.update(
        external_id=str(int(customer["external_id"]) + n // 2),
        email=f"customer{n // 2}@example.com",
        phone=f"+1514{5_550_000 + n // 2:07d}",
        updated_at=_moved(customer["updated_at"], shift),
    )
    return order


def _events(n: int) -> list[InboxEntry]:
    """Order ``n``'s events, as intake stores them."""
    order = _order(n)
    entries = []
    for kind, offset in KINDS:
        updated = _moved(order["updated_at"], offset)
        payload = {"type": kind, "occurred_at": updated, "order": {**order, "updated_at": updated}}
        entries.append(
            InboxEntry.for_event(
                CanonicalEvent.model_validate(payload),
                source="shopify",
                dedupe_key=f"bench:{n}:{kind}",
                topic=None,
                shop=None,
            )
        )
    return entries


def _fill(engine: Engine, orders: int) -> int:
    """The backlog of ``orders`` orders' events, written by intake's own insert (its payloads
    as intake writes them)."""
    total = 0
    chunk: list[InboxEntry] = []
    with engine.begin() as conn:
        for n in range(orders):
            chunk += _events(n)
            if len(chunk) >= 4000 or n == orders - 1:
                add_many_to_inbox(conn, chunk)
                total += len(chunk)
                chunk = []
    return total


# The generated events, kept aside for the ceiling (PostgreSQL): generating them is slow.
_TEMPLATE = "planning_bench_events"


def _load(engine: Engine, orders: int, *, keep: bool = False) -> int:
    """Empty tables and an inbox of ``orders`` x 4 pending events; returns the event count.
    ``keep``: also copy the events aside (PostgreSQL), for ``_reload``."""
    fresh_schema(engine)
    events = _fill(engine, orders)
    if keep:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {_TEMPLATE} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {_TEMPLATE}"))
            conn.execute(text(f"CREATE TABLE {_TEMPLATE}.inbox_events AS TABLE inbox_events"))
    return events


def _reload(engine: Engine) -> None:
    """Empty tables and the inbox ``_load`` kept aside, which is then dropped."""
    fresh_schema(engine)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO inbox_events SELECT * FROM {_TEMPLATE}.inbox_events"))
        conn.execute(text(f"DROP SCHEMA {_TEMPLATE} CASCADE"))


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _statement_counter(engine: Engine) -> Callable[[], int]:
    """How many statements this process has sent to ``engine``'s database so far.

    On PostgreSQL they are counted at psycopg's cursor: the drain runs its fixed statements
    through the driver itself (``store.driver_statements``), unseen by SQLAlchemy's events.
    """
    sent = 0

    def count(*_: Any) -> None:
        nonlocal sent
        sent += 1

    if engine.dialect.name != "postgresql":
        event.listen(engine, "before_cursor_execute", count)
        return lambda: sent
    for name in ("execute", "executemany"):
        method = getattr(psycopg.Cursor, name)

        def counted(cursor: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            count()
            return _method(cursor, *args, **kwargs)

        setattr(psycopg.Cursor, name, counted)  # in the drainer's own process only
    return lambda: sent


def _drain(url: str, batch_size: int, start: Any, results: Any) -> None:
    """Child process, one drainer: drain the inbox once every drainer is ready; report its
    start and end (wall clock), events, planned touchpoints, statements sent, CPU time and,
    per batch, when it finished, its size and the resident memory then."""
    engine = make_engine(parse_database_url(url))
    statements = _statement_counter(engine)
    config = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
    # loyalty as the DAG applies it: award on paid, in the same transaction as planning
    loyalty = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    progress: list[tuple[float, int, float, float]] = []

    def recorded(session: Any, items: Any, *args: Any, **kwargs: Any) -> None:
        process_batch(session, items, *args, **kwargs)
        progress.append((time.time(), len(items), _rss_mb(), time.process_time()))

    start.wait()
    began, cpu = time.time(), time.process_time()
    summary = process_inbox(
        session_factory(engine),
        config,
        worker=f"bench:{os.getpid()}",
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: datetime(2026, 6, 1, tzinfo=UTC),
        batch_size=batch_size,
        processor=recorded,
        loyalty=loyalty,
    )
    results.put(
        {
            "began": began,
            "ended": time.time(),
            "events": sum(summary.events.values()),
            "failed": summary.failed,
            "statements": statements(),
            "cpu": time.process_time() - cpu,
            "cpu_began": cpu,
            "progress": progress,
        }
    )
    engine.dispose()  # its connections closed, also when called in a test's process


def _measure(target: Callable[..., None], args: tuple[Any, ...], workers: int, url: str) -> Any:
    """Run ``workers`` processes of ``target(*args, start, results)`` side by side; their
    reports summed, with the CPU of the database's backends while they ran."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = context.Barrier(workers + 1)  # the workers, and this process starting the meter
    children = [
        context.Process(target=target, args=(*args, start, results)) for _ in range(workers)
    ]
    for child in children:
        child.start()
    meter = CpuMeter().postgres("PostgreSQL", url)
    with meter:
        start.wait()
        parts = [results.get() for _ in children]
    for child in children:
        child.join()
    events = sum(p["events"] for p in parts)
    meter.add("workers", sum(p["cpu"] for p in parts))
    return {
        "seconds": max(p["ended"] for p in parts) - min(p["began"] for p in parts),
        "events": events,
        "failed": sum(p.get("failed", 0) for p in parts),
        "statements": sum(p.get("statements", 0) for p in parts),
        "cpu_us": {role: ms * 1000 for role, ms in meter.per_item_ms(events).items()},
        "load": (meter.load_before, meter.load_after),
        "tenths": _tenths(parts, meter),
        "rss": _rss(parts),
    }


# The shortest tenth whose database CPU is reported: the meter's samples (every
# SAMPLE_SECONDS) at its ends then miss at most a tenth of it.
_SAMPLED_TENTH = 10 * SAMPLE_SECONDS


@dataclass(frozen=True)
class Tenth:
    """One tenth of the backlog, all workers together: its rate and CPU per event."""

    rate: float
    workers_us: float
    database_us: float | None  # None: the tenth was too short for the meter's samples

    def __str__(self) -> str:
        database = "-" if self.database_us is None else f"{self.database_us:.0f}"
        return f"{self.rate:,.0f} ({self.workers_us:.0f} + {database} us)"


def _tenths(parts: list[dict[str, Any]], meter: CpuMeter) -> list[Tenth]:
    """Each tenth of the backlog: events per second, the workers' CPU per event (each batch's
    own) and the database's (the meter's samples nearest the tenth's ends)."""
    batches = []  # (finished at, events, worker CPU seconds it took)
    for part in parts:
        cpu = part["cpu_began"]
        for at, n, _memory, cpu_then in part["progress"]:
            batches.append((at, n, cpu_then - cpu))
            cpu = cpu_then
    batches.sort()
    total = sum(n for _, n, _ in batches)
    tenths, mark, since = [], 1, min(p["began"] for p in parts)
    done = counted = 0
    worker_cpu = 0.0
    for at, n, cpu in batches:
        done += n
        worker_cpu += cpu
        while mark <= 10 and done >= total * mark / 10:
            events = max(done - counted, 1)
            tenths.append(
                Tenth(
                    rate=(done - counted) / max(at - since, 1e-9),
                    workers_us=worker_cpu * 1e6 / events,
                    database_us=meter.between("PostgreSQL", since, at) * 1e6 / events
                    if at - since >= _SAMPLED_TENTH
                    else None,
                )
            )
            counted, since, mark, worker_cpu = done, at, mark + 1, 0.0
    return tenths


def _rss(parts: list[dict[str, Any]]) -> tuple[float, float]:
    """Largest resident memory of a worker after a tenth of its batches, and at its end."""
    firsts = [p["progress"][len(p["progress"]) // 10][2] for p in parts if p["progress"]]
    lasts = [p["progress"][-1][2] for p in parts if p["progress"]]
    return max(firsts, default=0.0), max(lasts, default=0.0)


def _statistics(url: str, backend: str) -> str:
    if os.environ.get("POSTPURCHASE_BENCH_ANALYZE") == "1":
        return analyze(url)
    return NOT_ANALYZED if backend == "postgresql" else "SQLite, no ANALYZE"


def run(quick: bool) -> str:
    """Drain a filled inbox batched, with its ceiling and baseline; the Markdown section."""
    orders = int(os.environ.get("POSTPURCHASE_BENCH_ORDERS", "1000" if quick else "250000"))
    baseline_orders = int(os.environ.get("POSTPURCHASE_BENCH_BASELINE_ORDERS", "100"))
    drainers = int(os.environ.get("POSTPURCHASE_BENCH_DRAINERS", "2"))
    url = os.environ.get("POSTPURCHASE_BENCH_POSTGRES_URL")
    if not url:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='postpurchase-bench-')}/bench.db"
    engine = make_engine(parse_database_url(url))
    backend = engine.dialect.name
    if backend != "postgresql":
        drainers = 1  # as the DAG does: SQLite has a single writer

    events = _load(engine, orders, keep=backend == "postgresql")
    statistics = _statistics(url, backend)
    print(f"    draining {events:,} events with {drainers} drainer(s)", flush=True)
    batched = _measure(_drain, (url, BATCH_SIZE), drainers, url)
    with engine.connect() as conn:
        touchpoints = conn.execute(select(func.count()).select_from(Touchpoint)).scalar_one()
    ceiling = None
    if backend == "postgresql":
        _reload(engine)
        _statistics(url, backend)
        print(f"    ceiling: the same writes, lean statements, {drainers} process(es)", flush=True)
        campaigns = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
        plans = planning_ceiling.plans(campaigns, _genuine()[0])
        ceiling = _measure(
            planning_ceiling.drain, (url, plans, campaigns.outcomes.salt), drainers, url
        )
        with engine.connect() as conn:
            ceiling["touchpoints"] = conn.execute(
                select(func.count()).select_from(Touchpoint)
            ).scalar_one()
    baseline_events = _load(engine, baseline_orders)
    print(f"    baseline: {baseline_events:,} events one at a time", flush=True)
    baseline = _measure(_drain, (url, 1), 1, url)
    engine.dispose()
    return _report(
        orders, events, touchpoints, drainers, backend, statistics, batched, ceiling, baseline
    )


def _command(orders: int, backend: str) -> str:
    command = rerun_command("benchmarks", "planning", postgres=backend == "postgresql")
    return f"`POSTPURCHASE_BENCH_ORDERS={orders} {command.strip('`')}`"


def _cpu(m: dict[str, Any]) -> str:
    us = m["cpu_us"]
    total = sum(us.values())
    return f"{us.get('workers', 0):.0f} | {us.get('PostgreSQL', 0):.0f} | {total:.0f}"


def _report(
    orders: int,
    events: int,
    touchpoints: int,
    drainers: int,
    backend: str,
    statistics: str,
    batched: dict[str, Any],
    ceiling: dict[str, Any] | None,
    baseline: dict[str, Any],
) -> str:
    rate = batched["events"] / batched["seconds"]
    cores = os.cpu_count() or 1
    total_us = sum(batched["cpu_us"].values())
    lines = [
        f"{orders:,} orders x 4 events ({events:,} events; each order the genuine Shopify "
        "order of tests/fixtures/shopify/orders_create.json, normalised, under its own ids, "
        "stored as intake stores it) "
        f"drained into {touchpoints:,} "
        f"touchpoints on {backend} by {drainers} drainer process(es) side by side, in batches "
        f"of {BATCH_SIZE:,}, with loyalty applied as the DAG does. Statistics: {statistics}. "
        f"Rerun at this size: {_command(orders, backend)}.",
        "",
        "| run | events | events/s | CPU us/event: workers | database | total "
        "| statements/event | RSS per worker at 10% / end | load average before / after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]

    def row(name: str, m: dict[str, Any]) -> str:
        trips = m["statements"] / max(m["events"], 1)
        rss = f"{m['rss'][0]:.0f} / {m['rss'][1]:.0f} MB" if m["rss"][1] else "-"
        return (
            f"| {name} | {m['events']:,} | {m['events'] / m['seconds']:,.0f} | {_cpu(m)} | "
            f"{f'{trips:.3f}' if m['statements'] else '-'} | {rss} | "
            f"{m['load'][0]} / {m['load'][1]} |"
        )

    lines.append(row(f"drain ({drainers} x `process_inbox`)", batched))
    if ceiling is not None:
        lines.append(
            row(f"ceiling: the same writes, fewest statements ({drainers} processes)", ceiling)
        )
    lines.append(row("baseline: same code, one event per claim and commit", baseline))
    tenths = ", ".join(f"{10 * (i + 1)}%: {t}" for i, t in enumerate(batched["tenths"]))
    lines += [
        "",
        "Drain events/s in each tenth of the backlog, with CPU us per event of the workers + "
        f"the database (sampled every {SAMPLE_SECONDS} s): {tenths}.",
    ]
    if ceiling is not None:
        ceiling_rate = ceiling["events"] / ceiling["seconds"]
        ceiling_us = sum(ceiling["cpu_us"].values())
        efficiency = ceiling_us / total_us
        lines += [
            "",
            f"Against the ceiling measured in the same run: **{rate / ceiling_rate:.2f}** of its "
            f"rate ({rate:,.0f} vs {ceiling_rate:,.0f} events/s) and **{efficiency:.2f}**"
            f" of its CPU efficiency ({ceiling_us:.0f} vs {total_us:.0f} us of CPU per event, all "
            f"processes); the ceiling planned {ceiling['touchpoints']:,} touchpoints (every step "
            "the campaigns plan for the backlog's order, held out or not, without send windows), "
            "its processes decoding each payload (plain JSON, nothing validated) and handing "
            "PostgreSQL its values as arrays of columns, as the drainers hand it the values they "
            "extract.",
        ]
    lines += [
        "",
        f"Against the baseline: {rate / (baseline['events'] / baseline['seconds']):.0f}x.",
        "",
        f"At {total_us:.0f} us of CPU per event (drainers and database), this machine's {cores} "
        f"cores would drain at most {cores / total_us * 1e6:,.0f} events/s with nothing else "
        f"running. Goal: 10,000 events/s ({'met' if rate >= 10_000 else 'not met'} in wall-clock "
        f"time; {'within' if cores / total_us * 1e6 >= 10_000 else 'beyond'} reach in CPU).",
    ]
    print(
        f"    drain {rate:,.0f} events/s, {total_us:.0f} us CPU/event; tenths {tenths}",
        flush=True,
    )
    return "\n".join(lines) + "\n"
