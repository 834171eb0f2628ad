"""Benchmark ``outcomes``: the set-based outcome refresh against a per-touchpoint loop.

Loads, in SQL, ``touchpoints`` touchpoints over 60 days (review_request with a 10% holdout
and points_earned with two variants, a tenth by SMS), three provider events per touchpoint
on average (delivered, opens, clicks by people and by scanners, bounces, a few complaints)
and as many paid orders (some refunded) for half as many customers. Then times, each in a
child process:

- the refresh (``refresh_outcomes`` over 90 days, the measure_outcomes DAG's work without the
  KPIs), twice: the second one replaces what the first wrote;
- ``postpurchase report``'s query (``build_report`` over 30 days, KPIs from the snapshot);
- the baseline: the per-message work one touchpoint at a time (read it and its events, judge
  its clicks, read its customer's orders within the window after the first click by a
  person), on ``baseline`` touchpoints, extrapolated linearly.

Each step reports the CPU of every process involved (``benchmarks.child_timing``); the tables
have the statistics production would have (``harness.analyze_as_production``).

Entry points: ``run(quick)`` for ``make bench``; ``python -m benchmarks.outcomes --help``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select, text

from benchmarks.child_timing import TABLE_HEAD, Timing, in_child
from benchmarks.databases import fresh_schema, number_series
from benchmarks.harness import analyze_as_production, rerun_command, url_option
from postpurchase.campaigns.config import CampaignConfig, load_campaigns
from postpurchase.outcomes.clicks import BURST_SECONDS, SCANNER_SECONDS
from postpurchase.outcomes.refresh import refresh_outcomes
from postpurchase.outcomes.report import build_report
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine, session_factory, transaction
from postpurchase.store.models import MessageEvent, Order, Touchpoint
from postpurchase.tasks.outcomes import _save_snapshot

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
_SPAN = 60 * 86400  # seconds of history the data is spread over
INTRO = (
    "Data generated in SQL over 60 days: review_request (1 in 20 held out) and points_earned "
    "(variants a/b), a tenth by SMS; three SendGrid events per touchpoint on average "
    "(delivered, opens, clicks by people and by scanners, bounces, complaints); as many paid "
    'orders (4% partly refunded) for half as many customers. "Refresh" is '
    "`refresh_outcomes` over 90 days (the hourly DAG's work without the KPIs), the second one "
    'replacing what the first wrote; "report" is `build_report` over 30 days. The baseline, '
    "in the same run: the per-message work one touchpoint at a time (its events, its clicks "
    "judged, its customer's orders in the window after the first human click) on a sample, "
    "extrapolated linearly. Each runs alone in a fresh child process; CPU is user + system "
    "time of the child, of the PostgreSQL backends of the run's database (in 10 ms ticks; on "
    "SQLite the engine runs inside the child) and of the benchmark process waiting for it."
)


@dataclass(frozen=True)
class OutcomesResult:
    backend: str
    touchpoints: int
    events: int
    orders: int
    load_seconds: float
    statistics: str
    first: Timing
    second: Timing
    report: Timing
    baseline_touchpoints: int
    baseline: Timing
    goal_seconds: float
    command: str

    @property
    def baseline_extrapolated(self) -> float:
        return self.baseline.seconds / self.baseline_touchpoints * self.touchpoints

    def markdown(self) -> str:
        ratio = self.baseline_extrapolated / self.second.seconds
        cpu_ratio = self.baseline.cpu_total(self.baseline_touchpoints) / self.second.cpu_total(
            self.touchpoints
        )
        met = "met" if self.second.seconds < self.goal_seconds else "not met"

        n, base = self.touchpoints, self.baseline_touchpoints
        return "\n".join(
            [
                f"#### outcomes on {self.backend}: {n:,} touchpoints, "
                f"{self.events:,} provider events, {self.orders:,} orders "
                f"(loaded in {self.load_seconds:.1f} s)",
                "",
                f"Statistics: {self.statistics}. Rerun: {self.command}.",
                "",
                TABLE_HEAD,
                self.first.row("refresh (first)", n, "touchpoint"),
                self.second.row("refresh (again, replacing it)", n, "touchpoint"),
                self.report.row("report (30 days, JSON data)", 1, "report"),
                self.baseline.row(
                    f"baseline: per-touchpoint loop on {base:,}",
                    base,
                    "touchpoint",
                    f"{self.baseline.detail}; extrapolated to all: "
                    f"{self.baseline_extrapolated:.0f} s",
                ),
                "",
                f"Ratio: the refresh takes {ratio:.0f}x less time than the per-touchpoint loop "
                f"measured in the same run (extrapolated) and {cpu_ratio:.0f}x less CPU per "
                f"touchpoint, all processes together. Goal: under {self.goal_seconds:.0f} s "
                f"({met}); report under 1 s ({'met' if self.report.seconds < 1 else 'not met'}).",
            ]
        )


def _ago(engine: Engine, seconds: str) -> str:
    """NOW minus an SQL integer expression of seconds, as each backend stores a time."""
    if engine.dialect.name == "postgresql":
        return f"(TIMESTAMPTZ '{NOW.isoformat()}' - ({seconds}) * INTERVAL '1 second')"
    start = f"{NOW:%Y-%m-%d %H:%M:%S}"
    return f"strftime('%Y-%m-%d %H:%M:%f', '{start}', '-' || ({seconds}) || ' seconds')"


def _later(engine: Engine, moment: str, seconds: str) -> str:
    if engine.dialect.name == "postgresql":
        return f"({moment} + ({seconds}) * INTERVAL '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', {moment}, '+' || ({seconds}) || ' seconds')"


def load(engine: Engine, touchpoints: int) -> tuple[int, int]:
    """Customers, touchpoints, events and orders; returns (events, orders)."""
    pg = engine.dialect.name == "postgresql"
    customers = max(touchpoints // 2, 1)
    orders = touchpoints
    sent = _ago(engine, f"(g * 7919) % {_SPAN}")
    json = "CAST({} AS JSONB)" if pg else "{}"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (source, external_id, email, first_name, "
                "email_marketing_consent_state) "
                "SELECT 'bench', 'c' || g, 'c' || g || '@example.com', 'Bench', "
                f"'granted' FROM {number_series(engine, customers)}"
            )
        )
        # g % 10 = 0: held out (review_request) ; odd g: points_earned with variants a/b
        conn.execute(
            text(
                "INSERT INTO touchpoints (subject_key, campaign_id, step, channel, customer_id, "
                "due_at, status, attempts, sent_at, arm, variant, created_at, updated_at) "
                "SELECT 'order:' || g, "
                "CASE WHEN g % 2 = 1 THEN 'points_earned' ELSE 'review_request' END, 0, "
                "CASE WHEN g % 10 = 4 THEN 'sms' ELSE 'email' END, "
                f"1 + (g * 104729) % {customers}, {sent}, "
                "CASE WHEN g % 20 = 0 THEN 'skipped' ELSE 'sent' END, 1, "
                f"CASE WHEN g % 20 = 0 THEN NULL ELSE {sent} END, "
                "CASE WHEN g % 20 = 0 THEN 'holdout' ELSE 'treatment' END, "
                "CASE WHEN g % 2 = 1 THEN CASE WHEN g % 4 = 1 THEN 'a' ELSE 'b' END END, "
                f"{sent}, {sent} "
                f"FROM {number_series(engine, touchpoints)}"
            )
        )
        # Three events per touchpoint on average, by kind: delivered, opened, then a click
        # (human, an hour later; or a scanner 2 s after delivery), a bounce or a complaint.
        kind = (
            "CASE WHEN g % 3 = 0 THEN 'delivered' WHEN g % 3 = 1 THEN 'open' "
            "WHEN g % 300 = 2 THEN 'spamreport' WHEN g % 60 = 5 THEN 'bounce' ELSE 'click' END"
        )
        tp = f"1 + (g / 3) % {touchpoints}"
        offset = "CASE WHEN g % 3 = 0 THEN 30 WHEN g % 9 = 2 THEN 32 ELSE 3600 + g % 7200 END"
        events = touchpoints * 3
        conn.execute(
            text(
                "INSERT INTO message_events (provider, provider_event_id, touchpoint_id, "
                "provider_message_id, event, occurred_at, detail) "
                f"SELECT 'sendgrid', 'ev' || g, t.id, NULL, {kind}, "
                f"{_later(engine, 't.due_at', offset)}, "
                + json.format("'{\"url\": \"https://shop.example.com/p/' || (g % 5) || '\"}'")
                + f" FROM {number_series(engine, events)} JOIN touchpoints t ON t.id = {tp}"
            )
        )
        paid = _ago(engine, f"(g * 15485863) % {_SPAN}")
        conn.execute(
            text(
                "INSERT INTO orders (source, external_id, customer_id, currency, subtotal, total, "
                "total_tax, total_discounts, total_shipping, refunded_amount, financial_status, "
                "paid_at, placed_at, created_at, updated_at) "
                f"SELECT 'bench', 'o' || g, 1 + (g * 7919) % {customers}, 'USD', "
                "CAST(5 + (g % 20000) / 100.0 AS NUMERIC(18, 4)), "
                "CAST(5 + (g % 20000) / 100.0 AS NUMERIC(18, 4)), 0, 0, 0, "
                "CASE WHEN g % 25 = 0 THEN 5 ELSE 0 END, 'paid', "
                f"{paid}, {paid}, {paid}, {paid} FROM {number_series(engine, orders)}"
            )
        )
    return events, orders


def _config() -> CampaignConfig:
    return load_campaigns(ROOT / "config" / "campaigns.yaml")


def _refresh(engine: Engine) -> Callable[[], str]:
    config = _config()

    def work() -> str:
        with transaction(session_factory(engine)) as session:
            counts = refresh_outcomes(session, config, since=NOW - timedelta(days=90), now=NOW)
            _save_snapshot(session, "kpis", {"customers": 0}, NOW)
        return (
            f"{counts.touchpoints:,} touchpoints measured, {counts.attributed:,} orders "
            f"attributed, {counts.days:,} funnel rows"
        )

    return work


def _report(engine: Engine) -> Callable[[], str]:
    def work() -> str:
        with session_factory(engine)() as session:
            report = build_report(session, since=NOW - timedelta(days=30), now=NOW)
        return f"{len(report['campaigns'])} funnel rows, {len(report['uplift'])} uplift row(s)"

    return work


def _first_human_click(tp: Touchpoint, events: Sequence[MessageEvent]) -> datetime | None:
    """The refresh's click rules for one touchpoint: bursts and early clicks are scanners."""
    delivered = next((e.occurred_at for e in events if e.event == "delivered"), None)
    clicks = [e for e in events if e.event == "click"]
    for n, click in enumerate(clicks):
        near = [
            other
            for other in clicks[max(0, n - 1) : n + 2]
            if other is not click
            and other.detail.get("url") != click.detail.get("url")
            and abs((other.occurred_at - click.occurred_at).total_seconds()) <= BURST_SECONDS
        ]
        early = any(
            moment is not None
            and 0 <= (click.occurred_at - moment).total_seconds() < SCANNER_SECONDS
            for moment in (tp.sent_at, delivered)
        )
        if not near and not early and click.detail.get("method") != "HEAD":
            return click.occurred_at
    return None


def _baseline(engine: Engine, count: int) -> Callable[[], str]:
    """The same rules, one touchpoint at a time: its events, then its customer's orders."""
    config = _config()
    window = {
        (c.id, ch): (c.attribution or config.outcomes.attribution).seconds(ch)
        for c in config.campaigns
        for ch in ("email", "sms")
    }

    def work() -> str:
        attributed = 0
        started = time.perf_counter()
        with session_factory(engine)() as session:
            ids = session.scalars(select(Touchpoint.id).order_by(Touchpoint.id).limit(count))
            for tp_id in ids.all():
                tp = session.get(Touchpoint, tp_id)
                assert tp is not None
                events = session.scalars(
                    select(MessageEvent)
                    .where(MessageEvent.touchpoint_id == tp_id)
                    .order_by(MessageEvent.occurred_at, MessageEvent.id)
                ).all()
                first_click = _first_human_click(tp, events)
                if first_click is None:
                    continue
                limit = first_click + timedelta(seconds=window[(tp.campaign_id, tp.channel.value)])
                attributed += len(
                    session.scalars(
                        select(Order.id).where(
                            Order.customer_id == tp.customer_id,
                            Order.paid_at >= first_click,
                            Order.paid_at <= limit,
                            Order.cancelled_at.is_(None),
                        )
                    ).all()
                )
        rate = count / (time.perf_counter() - started)
        return f"{rate:,.0f} touchpoints/s ({attributed} candidate orders)"

    return work


def run_outcomes_benchmark(
    *, url: str, touchpoints: int, baseline: int = 2_000, goal_seconds: float = 60
) -> OutcomesResult:
    """Wipe and migrate the database at ``url``, load the data, time the runs."""
    engine = make_engine(parse_database_url(url))
    try:
        fresh_schema(engine)
        start = time.perf_counter()
        events, orders = load(engine, touchpoints)
        load_seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    statistics = analyze_as_production(url)
    first = in_child(_refresh, url)
    second = in_child(_refresh, url)
    report = in_child(_report, url)
    baseline = min(baseline, touchpoints)
    base = in_child(_baseline, url, baseline)
    command = rerun_command(
        "benchmarks.outcomes",
        f"--touchpoints {touchpoints}",
        f"--baseline {baseline}",
        f"--goal {goal_seconds:g}",
        *url_option(url),
    )
    return OutcomesResult(
        backend=parse_database_url(url).get_backend_name(),
        touchpoints=touchpoints,
        events=events,
        orders=orders,
        load_seconds=load_seconds,
        statistics=statistics,
        first=first,
        second=second,
        report=report,
        baseline_touchpoints=baseline,
        baseline=base,
        goal_seconds=goal_seconds,
        command=command,
    )


def run(quick: bool) -> str:
    """``make bench``: SQLite at 100k touchpoints; PostgreSQL at 1M when
    POSTPURCHASE_BENCH_POSTGRES_URL is set (a tenth of each with ``quick``)."""
    scale = 10 if quick else 1
    sections = []
    with tempfile.TemporaryDirectory() as folder:
        print("    outcomes on sqlite", flush=True)
        sections.append(
            run_outcomes_benchmark(
                url=f"sqlite:///{folder}/bench.db", touchpoints=100_000 // scale, goal_seconds=10
            ).markdown()
        )
    pg = os.environ.get("POSTPURCHASE_BENCH_POSTGRES_URL")
    if pg:
        print("    outcomes on postgresql", flush=True)
        sections.append(run_outcomes_benchmark(url=pg, touchpoints=1_000_000 // scale).markdown())
    return "\n\n".join([INTRO, *sections])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.outcomes", description=__doc__)
    parser.add_argument(
        "--url", help="database to WIPE and use (default: a SQLite file in a temporary folder)"
    )
    parser.add_argument("--touchpoints", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument("--goal", type=float, default=10.0, help="seconds (60 for PostgreSQL)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{folder}/bench.db"
        result = run_outcomes_benchmark(
            url=url, touchpoints=args.touchpoints, baseline=args.baseline, goal_seconds=args.goal
        )
    sys.stdout.write(result.markdown() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
