"""``postpurchase run``: the whole product on the embedded default, for ``make run``.

Local Airflow (``airflow standalone``) with the plugin, SQLite under var/, messages to the outbox;
a realistic feed replayed as signed webhooks; a summary once the work is done.

SIGTERM, SIGHUP and SIGINT all stop it the same way: every process it started is stopped
before it exits (0 when it was serving after the summary, 128 + the signal's number before).
"""

from __future__ import annotations

import secrets
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from postpurchase.cli.db import open_database
from postpurchase.demo.processes import StopRequested, stop_signals
from postpurchase.exceptions import PostpurchaseError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from postpurchase.demo.answers import SimulatedAnswers
    from postpurchase.demo.local_airflow import LocalAirflow
    from postpurchase.settings import Settings
    from postpurchase.store.database import SessionFactory

# A component of Airflow reported stopped this long did stop: one that missed a heartbeat on a
# busy machine is reported well again within seconds.
_STOPPED_FOR = 60


def _local_secret(var_dir: Path) -> str:
    """The shop secret the demo signs with, made once and kept under var/."""
    path = var_dir / "demo" / "shopify-webhook-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


@click.command("run")
@click.option(
    "--once", is_flag=True, help="Exit after the summary instead of serving until Ctrl-C."
)
@click.option("--orders", default=300, show_default=True, help="Orders in the sample feed.")
@click.option("--port", default=8080, show_default=True, help="Port of the local Airflow UI.")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for the work.")
def run(once: bool, orders: int, port: int, timeout: int) -> None:
    """Run the main job on the embedded default and print what it did."""
    from postpurchase.demo.local_airflow import LocalAirflow
    from postpurchase.settings import load_settings
    from postpurchase.store import schema

    settings = load_settings()
    var_dir = settings.var_dir
    click.echo("==> [1/5] engine database")
    engine = open_database(migrated=False)
    schema.upgrade(engine)
    click.echo(
        f"    {engine.url.render_as_string(hide_password=True)} at revision "
        f"{schema.current_revision(engine)}"
    )

    secret = _local_secret(var_dir)
    airflow = LocalAirflow(
        var_dir / "airflow",
        port=port,
        extra_env={
            "POSTPURCHASE_VAR_DIR": str(var_dir),
            "POSTPURCHASE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET": secret,
        },
    )
    click.echo(f"==> [2/5] starting local Airflow at {airflow.base_url} (log: {airflow.log_path})")
    serving = False
    with stop_signals():
        try:
            airflow.start()
            _main_job(airflow, engine, var_dir, secret, orders=orders, timeout=timeout)
            if once:
                return
            serving = True
            click.echo(
                f"\nServing until Ctrl-C (webhooks: {airflow.base_url}/postpurchase/webhooks/...)."
            )
            while True:
                time.sleep(3600)
        except KeyboardInterrupt as stop:
            signum = stop.signum if isinstance(stop, StopRequested) else signal.SIGINT
            click.echo(f"\n{signal.Signals(signum).name}: stopping local Airflow…")
            if not serving:
                raise SystemExit(128 + signum) from None
        finally:
            airflow.stop()
            engine.dispose()
            click.echo("local Airflow stopped")


def _main_job(
    airflow: LocalAirflow, engine: Engine, var_dir: Path, secret: str, *, orders: int, timeout: int
) -> None:
    """Steps 2 to 5 once Airflow is starting: wait for it, replay, drain, summarise."""
    from postpurchase.campaigns.validation import load_valid_campaigns
    from postpurchase.demo.feed import build_feed, write_feed
    from postpurchase.demo.feedback_summary import feedback_lines
    from postpurchase.demo.replay import read_feed, replay
    from postpurchase.demo.summary import summary_lines
    from postpurchase.settings import load_settings
    from postpurchase.store.database import session_factory

    started = time.monotonic()
    airflow.wait_ready(
        timeout=180,
        tick=lambda: click.echo(
            f"\r    waiting for Airflow and the webhook app… {time.monotonic() - started:.0f}s",
            nl=False,
        ),
    )
    click.echo(f"\r    Airflow is up after {time.monotonic() - started:.0f} s" + " " * 20)

    feed_path = var_dir / "demo" / "sample-feed.jsonl"
    write_feed(feed_path, build_feed(orders=orders, now=datetime.now(UTC)))
    deliveries = read_feed(feed_path)
    click.echo(f"==> [3/5] replaying {len(deliveries)} signed Shopify webhooks ({feed_path})")
    with click.progressbar(length=len(deliveries), label="    webhooks") as bar:
        answers = replay(
            deliveries,
            url=f"{airflow.base_url}/postpurchase/webhooks/shopify",
            secret=secret,
            on_done=lambda _status: bar.update(1),
        )
    click.echo("    answers: " + ", ".join(f"HTTP {s} × {n}" for s, n in sorted(answers.items())))

    click.echo("==> [4/5] processing events and dispatching due touchpoints")
    factory = session_factory(engine)
    _drain(airflow, factory, timeout)
    answered = _simulate_answers(airflow, factory)
    _drain(airflow, factory, timeout)  # the answers' review.submitted and feedback.negative

    click.echo("==> [5/5] summary")
    settings = load_settings()
    config = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    with factory() as session:
        for line in summary_lines(
            session, config=config, shop_zone=ZoneInfo(settings.shop_time_zone)
        ):
            click.echo(f"    {line}")
        click.echo(f"    {answered.line()}")
        for line in feedback_lines(session):
            click.echo(f"    {line}")
    _simulated_redemptions(factory, settings)
    _show_outcomes(factory)
    click.echo(
        f"\n    Airflow UI: {airflow.base_url}  (user admin, password {airflow.admin_password()})"
    )
    click.echo(
        f"    pages:      {airflow.base_url}/plugin/postpurchase-health (Health, Customers, "
        "Campaigns, KPIs, What if: in the UI's Plugins menu, behind the same login)"
    )
    click.echo(f"    outbox:     {var_dir / 'outbox'}")
    click.echo(
        "    why each DAG run did what it did: its note, at the top of the run's page in the UI "
        "(the runs list has no Note column; README: Run notes)"
    )


def _simulated_redemptions(factory: SessionFactory, settings: Settings) -> None:
    """Spending points, simulated on the demo's customers (postpurchase.rewards.demo)."""
    from postpurchase.loyalty.config import load_loyalty_config
    from postpurchase.rewards.demo import simulated_redemptions

    config = load_loyalty_config(settings.loyalty_config)
    for line in simulated_redemptions(factory, config):
        click.echo(f"    {line}")


def _simulate_answers(airflow: LocalAirflow, factory: SessionFactory) -> SimulatedAnswers:
    """A few customers answer the check-in, the NPS survey and the review page through the
    running app, like a browser (demo only: labelled as simulated in the summary)."""
    import httpx

    from postpurchase.demo.answers import answer_targets, simulate_answers
    from postpurchase.messages.tokens import signing_key
    from postpurchase.settings import load_settings

    click.echo("    simulating a few customers' answers (check-ins, NPS, reviews; demo only)")
    with factory() as session:
        targets = answer_targets(session)
    with httpx.Client(base_url=f"{airflow.base_url}/postpurchase", timeout=30) as client:
        return simulate_answers(client, targets, key=signing_key(load_settings()))


def _drain(airflow: LocalAirflow, factory: SessionFactory, timeout: int) -> None:
    """Wait until the inbox is processed, tiers are refreshed once, and every due touchpoint
    is dispatched (including the welcome messages the tier changes plan).

    The DAGs run on their own (inbox watcher, one-minute schedules, the tier refresh on its
    cron); triggering them here only saves the newcomer the wait.
    """
    from postpurchase.demo.summary import tiers_assigned, work_left

    deadline = time.monotonic() + timeout
    last_trigger: dict[str, float] = {}
    while True:
        with factory() as session:
            inbox, due = work_left(session, datetime.now(UTC))
            tiers = tiers_assigned(session)
        click.echo(
            f"\r    inbox events left: {inbox:>5}   touchpoints due: {due:>5}   "
            f"customers with a tier: {tiers:>5}",
            nl=False,
        )
        if inbox == 0 and due == 0 and tiers:
            click.echo("")
            return
        stopped = airflow.stopped(for_seconds=_STOPPED_FOR)
        if stopped:
            click.echo("")
            raise PostpurchaseError(
                f"Airflow's {' and '.join(stopped)} stopped (no heartbeat for over "
                f"{_STOPPED_FOR} s) and nothing runs the DAGs any more: see "
                f"{airflow.log_path}, then run the command again"
            )
        if time.monotonic() > deadline:
            click.echo("")
            raise PostpurchaseError(
                f"work still left after {timeout} s ({inbox} events, {due} touchpoints): "
                f"see the DAG runs in the Airflow UI at {airflow.base_url}"
            )
        if inbox:
            dag_id = "process_purchase_events"
        elif not tiers:
            dag_id = "refresh_segments"
        else:
            dag_id = "dispatch_touchpoints"
        # A trigger Airflow refuses (busy: its SQLite database is shared by every component)
        # is tried again at the next turn; the DAG's own schedule runs it meanwhile.
        if time.monotonic() - last_trigger.get(dag_id, -60.0) > 45 and airflow.trigger(dag_id):
            last_trigger[dag_id] = time.monotonic()
        time.sleep(2)


def _show_outcomes(factory: SessionFactory) -> None:
    """Simulate a week of provider events and repeat orders, measure, show the funnel."""
    from postpurchase.campaigns.config import load_campaigns
    from postpurchase.demo.outcomes import HORIZON, simulate_outcomes
    from postpurchase.demo.summary import outcome_lines
    from postpurchase.settings import load_settings
    from postpurchase.store.database import transaction
    from postpurchase.tasks.outcomes import measure_outcomes

    now = datetime.now(UTC)
    later = now + HORIZON
    config = load_campaigns(load_settings().campaigns_file)
    with transaction(factory) as session:
        simulated = simulate_outcomes(session, now=now)
        measure_outcomes(session, config, now=later)
    click.echo(
        f"    outcomes a week later, SIMULATED ({simulated.events} provider events and "
        f"{simulated.orders} repeat orders made up by the demo, no real customer behind them):"
    )
    with factory() as session:
        for line in outcome_lines(session, now=later):
            click.echo(f"      {line}")
