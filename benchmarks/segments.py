"""Benchmark ``segments``: one set-based tier refresh against a per-customer query loop.

Loads ``customers`` customers with ``orders_per_customer`` orders each into a fresh, migrated
database (PostgreSQL or SQLite), then times in a child process each:

- the first refresh (every customer new: many tier changes, history rows and inbox events),
- a second refresh a day later (steady state: few changes),
- the baseline: a per-customer loop (one aggregate query and one upsert per customer) over
  ``baseline_customers`` customers, extrapolated linearly to the whole population.

Peak memory is the child process's peak resident set size (for SQLite it includes the
database engine, which runs in-process; PostgreSQL's server memory is not counted); CPU per
customer is that of every process involved (``benchmarks.child_timing``). The tables have
the statistics production would have (``harness.analyze_as_production``): on PostgreSQL they
are analysed after loading and again after the first refresh.

Entry points: ``run_segments_benchmark(...)`` returns a ``SegmentsResult`` (``.markdown()``
for BENCHMARKS.md); ``python -m benchmarks.segments --help`` runs it from the shell.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from benchmarks.child_timing import TABLE_HEAD, Timing, in_child
from benchmarks.databases import fresh_schema, number_series
from benchmarks.harness import analyze, analyze_as_production, rerun_command, url_option
from postpurchase.loyalty.config import LoyaltyConfig, load_loyalty_config
from postpurchase.loyalty.earning import add_months
from postpurchase.loyalty.tiers import refresh_segments
from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine, session_factory, transaction
from postpurchase.store.models import CustomerTier, Order

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "loyalty.yaml"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
INTRO = (
    "One tier refresh (`refresh_segments`) over the whole customer base with the shipped "
    "`config/loyalty.yaml`, on data generated in SQL: 5 orders per customer on average, a "
    "quarter of them to the top 5% of customers, spread over 18 months, 5-205 USD. The first "
    "refresh gives every customer a first tier (history rows and `tier.changed` events for "
    "each change); the second, a day later, is the daily steady state. The baseline, in the "
    "same run: a per-customer loop (one aggregate query and one upsert per customer) on a "
    "sample, extrapolated linearly. Each runs alone in a fresh child process. CPU per customer "
    "is user + system time of every process involved: the child, the PostgreSQL backends of "
    "the run's database (in 10 ms ticks; on SQLite the engine runs inside the child) and the "
    "benchmark process waiting for it. Peak RSS is the child's (PostgreSQL's server memory is "
    "not counted)."
)


@dataclass(frozen=True)
class SegmentsResult:
    backend: str
    customers: int
    orders: int
    load_seconds: float
    statistics: str
    first: Timing
    steady: Timing
    baseline_customers: int
    baseline: Timing
    command: str

    @property
    def baseline_extrapolated(self) -> float:
        return self.baseline.seconds / self.baseline_customers * self.customers

    def markdown(self) -> str:
        speedup = self.baseline_extrapolated / self.steady.seconds
        cpu_ratio = self.baseline.cpu_total(self.baseline_customers) / self.steady.cpu_total(
            self.customers
        )
        return "\n".join(
            [
                f"#### segments on {self.backend}: {self.customers:,} customers, "
                f"{self.orders:,} orders (loaded in {self.load_seconds:.1f} s)",
                "",
                f"Statistics: {self.statistics}. Rerun: {self.command}.",
                "",
                TABLE_HEAD,
                self.first.row("first refresh (all new)", self.customers, "customer"),
                self.steady.row("second refresh (steady)", self.customers, "customer"),
                self.baseline.row(
                    f"baseline: per-customer loop on {self.baseline_customers:,}",
                    self.baseline_customers,
                    "customer",
                    f"{self.baseline.detail}; extrapolated to all: "
                    f"{self.baseline_extrapolated:.1f} s",
                ),
                "",
                f"Against the baseline measured in the same run: the steady refresh takes "
                f"{speedup:.0f}x less time (the loop extrapolated) and {cpu_ratio:.0f}x less "
                "CPU per customer, all processes together.",
            ]
        )


def load(engine: Engine, customers: int, orders_per_customer: int) -> int:
    """Fill customers and orders with deterministic, varied data; returns the order count."""
    orders = customers * orders_per_customer
    pg = engine.dialect.name == "postgresql"
    # Spread over 18 months so some orders fall out of the 12-month window; amounts 5..205.
    paid_at = (
        f"TIMESTAMPTZ '{NOW.isoformat()}' - ((g * 7919) % 540) * INTERVAL '1 day'"
        if pg
        else f"datetime('{NOW:%Y-%m-%d %H:%M:%S}', '-' || ((g * 7919) % 540) || ' days')"
    )
    amount = "CAST(5 + ((g * 104729) % 20000) / 100.0 AS NUMERIC(18, 4))"
    # A quarter of the orders go to the top 5% of customers: frequencies and spend vary.
    top = max(customers // 20, 1)
    customer = (
        f"CASE WHEN g % 4 = 0 THEN 1 + ((g * 7919) % {top}) ELSE 1 + ((g * 7919) % {customers}) END"
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (source, external_id, email, first_name, "
                "email_marketing_consent_state) "
                f"SELECT 'bench', 'c' || g, 'c' || g || '@example.com', 'Bench', "
                f"'granted' FROM {number_series(engine, customers)}"
            )
        )
        conn.execute(
            text(
                "INSERT INTO orders (source, external_id, customer_id, currency, subtotal, total, "
                "total_tax, total_discounts, total_shipping, refunded_amount, paid_at) "
                f"SELECT 'bench', 'o' || g, {customer}, 'USD', {amount}, "
                f"{amount}, 0, 0, 0, 0, {paid_at} FROM {number_series(engine, orders)}"
            )
        )
    return orders


def _refresh(engine: Engine, now: datetime) -> Callable[[], str]:
    config = load_loyalty_config(CONFIG)

    def work() -> str:
        with transaction(session_factory(engine)) as session:
            summary = refresh_segments(session, config=config, now=now)
        return f"{summary.events:,} tier changes; tiers: " + ", ".join(
            f"{t} {n:,}" for t, n in summary.sizes.items()
        )

    return work


def _tier_for(config: LoyaltyConfig, spend: float, orders: int) -> str:
    # The baseline's tier rule, without RFM (it cannot rank a population one customer at a time).
    chosen = config.tiers.base.name
    for level in config.tiers.levels[1:]:
        if (level.min_spend is None or spend >= float(level.min_spend)) and (
            level.min_orders is None or orders >= level.min_orders
        ):
            chosen = level.name
    return chosen


def _baseline(engine: Engine, customers: int) -> Callable[[], str]:
    """One aggregate SELECT and one upsert per customer: the shape set-based SQL replaces."""
    config = load_loyalty_config(CONFIG)
    window_start = add_months(NOW, -config.tiers.window_months)

    def work() -> str:
        started = time.perf_counter()
        with transaction(session_factory(engine)) as session:
            for customer_id in range(1, customers + 1):
                orders, spend, _last = session.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(Order.total - Order.refunded_amount), 0),
                        func.max(Order.paid_at),
                    ).where(
                        Order.customer_id == customer_id,
                        Order.paid_at > window_start,
                        Order.cancelled_at.is_(None),
                    )
                ).one()
                session.merge(
                    CustomerTier(
                        customer_id=customer_id,
                        tier=_tier_for(config, float(spend), orders),
                        since=NOW,
                        trailing_spend=spend,
                        trailing_orders=orders,
                    )
                )
                session.flush()
            session.rollback()  # measure the work, keep the refreshed tiers for nothing
        return f"{customers / (time.perf_counter() - started):,.0f} customers/s"

    return work


def run_segments_benchmark(
    *, url: str, customers: int, orders_per_customer: int = 5, baseline_customers: int = 2_000
) -> SegmentsResult:
    """Wipe and migrate the database at ``url``, load the data, time the three runs."""
    engine = make_engine(parse_database_url(url))
    try:
        fresh_schema(engine)
        start = time.perf_counter()
        orders = load(engine, customers, orders_per_customer)
        load_seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    statistics = analyze_as_production(url)
    first = in_child(_refresh, url, NOW)
    if url.startswith("postgresql"):
        analyze(url)  # a day later: autovacuum has analysed the tiers the first refresh wrote
        statistics += ", and again after the first refresh (a day's autovacuum would have)"
    steady = in_child(_refresh, url, NOW + timedelta(days=1))
    baseline_customers = min(baseline_customers, customers)
    baseline = in_child(_baseline, url, baseline_customers)
    command = rerun_command(
        "benchmarks.segments",
        f"--customers {customers}",
        f"--orders-per-customer {orders_per_customer}",
        f"--baseline-customers {baseline_customers}",
        *url_option(url),
    )
    return SegmentsResult(
        backend=parse_database_url(url).get_backend_name(),
        customers=customers,
        orders=orders,
        load_seconds=load_seconds,
        statistics=statistics,
        first=first,
        steady=steady,
        baseline_customers=baseline_customers,
        baseline=baseline,
        command=command,
    )


def run(quick: bool) -> str:
    """``make bench``: SQLite always, PostgreSQL too when POSTPURCHASE_BENCH_POSTGRES_URL is set."""
    customers = 10_000 if quick else 100_000
    sections = []
    with tempfile.TemporaryDirectory() as folder:
        targets = [f"sqlite:///{folder}/bench.db"]
        if os.environ.get("POSTPURCHASE_BENCH_POSTGRES_URL"):
            targets.append(os.environ["POSTPURCHASE_BENCH_POSTGRES_URL"])
        for url in targets:
            print(f"    segments on {parse_database_url(url).get_backend_name()}", flush=True)
            sections.append(run_segments_benchmark(url=url, customers=customers).markdown())
    return "\n\n".join([INTRO, *sections])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.segments", description=__doc__)
    parser.add_argument(
        "--url",
        help="database to WIPE and use (default: a SQLite file in a temporary folder)",
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders-per-customer", type=int, default=5)
    parser.add_argument("--baseline-customers", type=int, default=2_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{folder}/bench.db"
        result = run_segments_benchmark(
            url=url,
            customers=args.customers,
            orders_per_customer=args.orders_per_customer,
            baseline_customers=args.baseline_customers,
        )
    sys.stdout.write(result.markdown() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
