"""Benchmark ``retention``: the housekeeping DAG's task body purging personal fields from
millions of processed inbox rows on PostgreSQL, while intake keeps taking webhooks.

What runs: ``POSTPURCHASE_BENCH_POSTGRES_URL`` (a database the benchmark may wipe) is filled
with processed inbox rows 60 days old, whose payloads are canonical ``order.placed`` events
with a customer (email, phone, names, birthday) and a tracking URL, in one INSERT ... SELECT
over ``generate_series`` per chunk. Then ``postpurchase serve`` takes signed Shopify
``orders/create`` webhooks from a closed-loop load generator (``CONCURRENCY`` connections):
first with nothing else running (the baseline), then while ``tidy_database`` (the housekeeping
DAG's task body) runs in its own process and purges every row, in batches of
``retention.BATCH_SIZE``, each its own transaction, then with nothing else running again.
Intake's p50/p99 are compared between the phases of the same run. Each phase reports the CPU
per webhook of the server, the load generator and the database's backends, and the load
average at its start and end; the purge, its CPU per row (its own process, and the backends
less intake's share). ``POSTPURCHASE_BENCH_RETENTION_ROWS`` sets how many rows.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from benchmarks.harness import CpuMeter, rerun_command
from benchmarks.intake import SECRET, _fresh_database, _webhooks
from benchmarks.loadgen import LoadResult, Server, free_port, run_load
from postpurchase.privacy.retention import BATCH_SIZE
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine

TARGET_ROWS = 10_000_000  # the size the retention design is meant for
CONCURRENCY = 4  # a steady trickle, not saturation: latency then shows waiting, not queueing
WAVE = 1_000  # webhooks per load wave; waves repeat until the purge is done
BASELINE_WAVES = 4
LOAD_CHUNK = 250_000
WORKERS = int(os.environ.get("POSTPURCHASE_BENCH_WORKERS", "2"))
BIN = Path(sys.executable).parent
SIGNING = "link-signing-secret-for-benchmarks-0123456789"
ROLES = ("server", "load generator", "PostgreSQL")

# One processed order.placed event per row, shaped like intake's canonical payloads.
_LOAD = """
INSERT INTO inbox_events (source, dedupe_key, event_type, topic, shop, subject_id, occurred_at,
    received_at, payload, status, attempts, processed_at)
SELECT 'shopify', 'shopify:bench-shop:orders/create:' || g, 'order.placed', 'orders/create',
    'bench-shop.myshopify.com', (20000000 + g)::text, now() - interval '60 days',
    now() - interval '60 days',
    jsonb_build_object(
        'type', 'order.placed',
        'occurred_at', '2026-10-01T10:00:00+00:00',
        'order', jsonb_build_object(
            'external_id', (20000000 + g)::text, 'name', '#' || g, 'currency', 'EUR',
            'total', '129.90', 'subtotal', '124.00', 'financial_status', 'paid',
            'tracking_url', 'https://track.example.com/parcel/JJD' || g,
            'shipping_address_key', md5(g::text),
            'lines', jsonb_build_array(jsonb_build_object('external_id', g::text,
                'title', 'Merino Wool Crew Sweater', 'quantity', 1, 'unit_price', '124.00')),
            'customer', jsonb_build_object(
                'external_id', (900000 + g % 400000)::text,
                'email', 'customer' || g || '@example.org',
                'phone', '+33612' || lpad(g::text, 6, '0'),
                'first_name', 'Chloé', 'last_name', 'Martin-' || g, 'birthday', '1990-04-12'))),
    'done', 1, now() - interval '60 days'
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
"""


def _load(url: str, rows: int) -> float:
    """Fill the inbox with ``rows`` processed rows; seconds taken (with VACUUM ANALYZE)."""
    engine = make_engine(parse_database_url(url))
    started = time.perf_counter()
    try:
        for first in range(1, rows + 1, LOAD_CHUNK):
            last = min(rows, first + LOAD_CHUNK - 1)
            with engine.begin() as conn:
                conn.execute(text(_LOAD), {"first": first, "last": last})
            print(f"    loaded {last:,} of {rows:,} rows", flush=True)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE inbox_events"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


def _purge(url: str, var_dir: str) -> tuple[float, str, float]:
    """In a child process: the housekeeping DAG's task body; (seconds, its run note, its CPU
    seconds). Its connection stays open in the process's engine, so the parent's meter still
    sees the backend at its last look."""
    from postpurchase.settings import Settings
    from postpurchase.tasks.housekeeping import tidy_database

    settings = Settings(database_url=url, var_dir=Path(var_dir), signing_secret=SIGNING)
    started, cpu = time.perf_counter(), time.process_time()
    note = tidy_database(settings, now=datetime.now(UTC))
    return time.perf_counter() - started, note, time.process_time() - cpu


def _meter(server_pid: int, url: str) -> CpuMeter:
    """CPU of the server (all its workers), this process (the load generator, with the
    samplers) and the database's backends (intake's, the purge's, the wait sampler's)."""
    meter = CpuMeter().process_tree("server", server_pid).this_process("load generator")
    return meter.postgres("PostgreSQL", url)


def _waves(port: int, until: object, minimum: int) -> LoadResult:
    """Load waves until ``until()`` is true (at least ``minimum`` waves); merged result."""
    merged = LoadResult(wall_seconds=0.0)
    waves = 0
    while waves < minimum or not until():  # type: ignore[operator]
        requests = [raw for _, raw in _webhooks(port, WAVE, f"w{time.monotonic_ns()}")]
        result = run_load(port, requests, CONCURRENCY)
        merged.latencies += result.latencies
        merged.statuses.update(result.statuses)
        merged.wall_seconds += result.wall_seconds
        merged.cpu_seconds += result.cpu_seconds
        waves += 1
    return merged


class WaitSampler:
    """Samples, every 50 ms, which other sessions of the database wait and on what kind of
    thing (pg_stat_activity): a heavyweight lock ("Lock") is what would stop intake."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(parse_database_url(url))
        self.samples = 0
        self.waits: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = text(
            "SELECT wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'active' AND wait_event_type IS NOT NULL"
        )
        with self.engine.connect() as conn:
            while not self._stop.wait(0.05):
                rows = conn.execute(query).all()
                conn.rollback()
                self.samples += 1
                self.waits.update(f"{kind}:{event}" for kind, event in rows)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()

    @property
    def locks(self) -> int:
        return sum(n for name, n in self.waits.items() if name.startswith("Lock:"))

    def summary(self) -> str:
        locks = self.locks
        top = ", ".join(f"{name} {n}" for name, n in self.waits.most_common(4)) or "none"
        kinds = ", ".join(
            f"{name} {n}" for name, n in self.waits.most_common() if name.startswith("Lock:")
        )
        return (
            f"{self.samples:,} samples of the database's other sessions every 50 ms: waits on a "
            f"heavyweight lock (`Lock`) seen {locks} times ({kinds or 'none'}); most seen "
            f"waits: {top}"
        )


def _personal_left(url: str) -> int:
    engine = make_engine(parse_database_url(url))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM inbox_events WHERE personal_data_removed_at IS NULL "
                        "AND received_at < now() - interval '30 days'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


@dataclass
class Found:
    """What one run measured: intake's load and the meters of each phase, and the purge."""

    rows: int
    load_seconds: float
    phases: dict[str, LoadResult]  # before, during and after the purge
    meters: dict[str, CpuMeter]
    waits: WaitSampler
    purge_seconds: float
    note: str
    left: int  # rows still holding personal data past the retention period

    def webhooks(self, phase: str) -> int:
        return sum(self.phases[phase].statuses.values())


def _measure(url: str, rows: int, workdir: Path) -> Found:
    _fresh_database(url)
    loaded = _load(url, rows)
    port = free_port()
    env = {
        **os.environ,
        "POSTPURCHASE_DATABASE_URL": url,
        "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET": SECRET,
        "POSTPURCHASE_SIGNING_SECRET": SIGNING,
    }
    command = [str(BIN / "postpurchase"), "serve", "--port", str(port)]
    command += ["--workers", str(WORKERS), "--no-access-log"]
    server = Server(command, env, workdir / "serve.log")
    meters = {phase: _meter(server.process.pid, url) for phase in ("before", "during", "after")}
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/webhooks/health", timeout=60)
        run_load(port, [raw for _, raw in _webhooks(port, 300, "warm")], CONCURRENCY)
        print(f"    baseline: {BASELINE_WAVES} waves of {WAVE:,} webhooks", flush=True)
        with meters["before"]:
            before = _waves(port, lambda: True, BASELINE_WAVES)
        print("    purge: tidy_database in a child process, intake load meanwhile", flush=True)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            with meters["during"], WaitSampler(url) as sampler:
                pending = pool.apply_async(_purge, (url, str(workdir / "var")))
                during = _waves(port, pending.ready, 1)
            purge_seconds, note, purge_cpu = pending.get()
        print(f"    after: {BASELINE_WAVES} waves of {WAVE:,} webhooks", flush=True)
        with meters["after"]:
            after = _waves(port, lambda: True, BASELINE_WAVES)
    finally:
        server.stop()
    meters["during"].add("purge process", purge_cpu)
    phases = {"before": before, "during": during, "after": after}
    return Found(rows, loaded, phases, meters, sampler, purge_seconds, note, _personal_left(url))


def _line(name: str, phase: str, found: Found) -> str:
    result, meter = found.phases[phase], found.meters[phase]
    sent = found.webhooks(phase)
    cpu = meter.per_item_ms(sent)
    cells = " | ".join(f"{cpu.get(role, 0.0):.3f}" for role in ROLES)
    others = {s: n for s, n in result.statuses.items() if s != 202}
    return (
        f"| {name} | {sent:,} | {result.rate(202):,.1f} | {result.p50_ms:.1f} "
        f"| {result.p99_ms:.1f} | {result.percentile(1.0) * 1000:.1f} | {cells} "
        f"| {meter.load_before} / {meter.load_after} | {others or 'none'} |"
    )


def _purge_cpu(found: Found) -> str:
    """The purge's CPU per row: its own process, and the database's backends less intake's
    share (the baselines' CPU per webhook times the webhooks taken meanwhile)."""
    during = found.meters["during"].seconds
    intake_pg = sum(found.meters[p].seconds.get("PostgreSQL", 0.0) for p in ("before", "after"))
    per_webhook = intake_pg / max(found.webhooks("before") + found.webhooks("after"), 1)
    intake_share = per_webhook * found.webhooks("during")
    backends = during.get("PostgreSQL", 0.0)
    purge, rows = during.get("purge process", 0.0), found.rows
    own = purge + max(backends - intake_share, 0.0)
    return (
        f"CPU per row purged: the purge process {purge * 1e6 / rows:.1f} us; the database's "
        f"backends {backends * 1e6 / rows:.1f} us while it ran, of which intake's "
        f"{found.webhooks('during'):,} webhooks account for about {intake_share * 1e6 / rows:.1f}"
        f" us (at the baselines' {per_webhook * 1000:.3f} ms per webhook); so the purge costs "
        f"about **{own * 1e6 / rows:.1f} us** of CPU per row, {1 / own * rows:,.0f} rows per "
        "second of one core. The server's and the load generator's CPU during the purge is "
        "intake's (per webhook in the table, against the baselines'); the purge's load average: "
        f"{found.meters['during'].load_before} when it started, "
        f"{found.meters['during'].load_after} when it ended."
        if own
        else "CPU of the purge: none measured."
    )


def _intro(found: Found, command: str) -> str:
    return (
        f"{found.rows:,} processed inbox rows 60 days old on PostgreSQL (canonical "
        "`order.placed` payloads with a customer's email, phone, names, birthday and a tracking "
        f"URL), loaded with `generate_series` in {found.load_seconds:.0f} s. Statistics: "
        "`VACUUM ANALYZE inbox_events` after loading, as autovacuum would leave the table after "
        "a bulk load. The purge is `tidy_database`, the housekeeping DAG's task body, in its own "
        f"process: one UPDATE of at most {BATCH_SIZE:,} rows per transaction, found through the "
        "partial index of rows still holding personal data. Meanwhile `postpurchase serve "
        f"--workers {WORKERS}` takes signed Shopify `orders/create` webhooks from {CONCURRENCY}"
        f" keep-alive connections (closed loop, waves of {WAVE:,}); the baselines are "
        f"{BASELINE_WAVES} waves just before and just after, in the same run, with nothing else "
        "of ours running. Load generator, server, database and purge share the machine's "
        f"{os.cpu_count()} cores (and its other users). CPU is user + system time: the server "
        "with its workers, this process (the load generator and the samplers), the database's "
        "backends (PostgreSQL's shared WAL writer and checkpointer not counted; backends in "
        f"10 ms ticks), and the purge process. Rerun at this size: {command}."
    )


def _waits(found: Found) -> str:
    return f"During the purge, {found.waits.summary()}. " + (
        "Intake only inserts rows no batch touches, so it never waited for a batch's "
        "locks; what it shares with the purge is the CPUs, the disk and the WAL."
        if found.waits.locks == 0
        else "The heavyweight locks waited on are listed above: relation extension "
        "(`Lock:extend`) is taken for a moment by whoever adds a page to the table, "
        "intake's inserts and the purge's new row versions alike; a wait for a batch's "
        "row locks would show as `Lock:transactionid` or `Lock:tuple`."
    )


def run(quick: bool) -> str:
    url = os.environ.get("POSTPURCHASE_BENCH_POSTGRES_URL")
    if not url:
        return "Not measured: set POSTPURCHASE_BENCH_POSTGRES_URL (PostgreSQL only)."
    rows = int(os.environ.get("POSTPURCHASE_BENCH_RETENTION_ROWS", 0)) or (
        100_000 if quick else 1_000_000
    )
    print(f"    retention on PostgreSQL: {rows:,} processed inbox rows", flush=True)
    with tempfile.TemporaryDirectory(prefix="postpurchase-bench-") as tmp:
        found = _measure(url, rows, Path(tmp))
    command = rerun_command("benchmarks", "retention", postgres=True)
    command = f"`POSTPURCHASE_BENCH_RETENTION_ROWS={rows} {command.strip('`')}`"
    before, during, after = (found.phases[p] for p in ("before", "during", "after"))
    seconds = found.purge_seconds
    ratio = during.p99_ms / before.p99_ms if before.p99_ms else float("inf")
    return "\n".join(
        [
            _intro(found, command),
            "",
            "| intake | webhooks | accepted/s | p50 ms | p99 ms | max ms | server CPU ms/webhook "
            "| load generator CPU ms/webhook | PostgreSQL CPU ms/webhook (during: the purge's "
            "and the wait sampler's too) | load average before / after | other answers |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
            _line("before the purge (baseline)", "before", found),
            _line("during the purge", "during", found),
            _line("after the purge (baseline)", "after", found),
            "",
            f"Purge: {seconds:,.1f} s for {rows:,} rows ({rows / seconds:,.0f} rows/s); run "
            f'note: "{found.note}". Rows still holding personal data past the retention '
            f"period afterwards: {found.left:,}."
            + (
                ""
                if rows >= TARGET_ROWS
                else f" The target, {TARGET_ROWS:,} rows, was not measured in this run: at this "
                f"rate its purge alone would take about {TARGET_ROWS / (rows / seconds) / 60:.0f}"
                f" min (`POSTPURCHASE_BENCH_RETENTION_ROWS={TARGET_ROWS}` runs it)."
            ),
            "",
            _purge_cpu(found),
            "",
            _waits(found),
            "",
            f"Intake p99 during the purge is {ratio:.2f}x the baseline's "
            f"before it ({during.p99_ms:.1f} ms against {before.p99_ms:.1f} ms; "
            f"{after.p99_ms:.1f} ms after it); no webhook was refused or timed out."
            if set(during.statuses) == {202}
            else f"Intake p99 during the purge is {ratio:.2f}x the baseline's; other answers: "
            f"{dict(during.statuses)}",
        ]
    )
