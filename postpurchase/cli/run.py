"""``postpurchase run``: the whole product on the embedded default, for ``make run``.

Local Airflow (``airflow standalone``) with the plugin, SQLite under var/, messages to the outbox;
a realistic feed replayed as signed webhooks; a summary once the work is done.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from postpurchase.cli.db import open_database
from postpurchase.exceptions import PostpurchaseError

if TYPE_CHECKING:
    from postpurchase.demo.local_airflow import LocalAirflow
    from postpurchase.settings import Settings
    from postpurchase.store.database import SessionFactory


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
    from postpurchase.demo.feed import build_feed, write_feed
    from postpurchase.demo.local_airflow import LocalAirflow
    from postpurchase.demo.replay import read_feed, replay
    from postpurchase.demo.summary import summary_lines
    from postpurchase.settings import load_settings
    from postpurchase.store import schema
    from postpurchase.store.database import session_factory

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
    airflow.start()
    try:
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
        click.echo(
            "    answers: " + ", ".join(f"HTTP {s} × {n}" for s, n in sorted(answers.items()))
        )

        click.echo("==> [4/5] processing events and dispatching due touchpoints")
        factory = session_factory(engine)
        _drain(airflow, factory, timeout)

        click.echo("==> [5/5] summary")
        with factory() as session:
            for line in summary_lines(session):
                click.echo(f"    {line}")
        _simulated_redemptions(factory, settings)
        click.echo(
            f"\n    Airflow UI: {airflow.base_url}  (user admin, password "
            f"{airflow.admin_password()})"
        )
        click.echo(f"    outbox:     {var_dir / 'outbox'}")
        click.echo("    each DAG run's counts are its note in the UI (Dag runs, Note column)")
        if once:
            return
        click.echo(
            f"\nServing until Ctrl-C (webhooks: {airflow.base_url}/postpurchase/webhooks/...)."
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("\nstopping…")
    finally:
        airflow.stop()
        engine.dispose()
        click.echo("local Airflow stopped")


def _simulated_redemptions(factory: SessionFactory, settings: Settings) -> None:
    """Spending points, simulated on the demo's customers (postpurchase.rewards.demo)."""
    from postpurchase.loyalty.config import load_loyalty_config
    from postpurchase.rewards.demo import simulated_redemptions

    config = load_loyalty_config(settings.loyalty_config)
    for line in simulated_redemptions(factory, config):
        click.echo(f"    {line}")


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
