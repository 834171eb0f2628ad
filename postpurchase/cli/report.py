"""``postpurchase report``: what each campaign achieves, uplift over holdouts, shop KPIs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from postpurchase.exceptions import InvalidInput

_SINCE = re.compile(r"^(\d+)([dw])$")


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """``30d``, ``8w`` or an ISO date (``2026-11-01``) as a UTC moment; None for all."""
    if value is None or value == "all":
        return None
    match = _SINCE.match(value.strip())
    if match:
        days = int(match.group(1)) * (7 if match.group(2) == "w" else 1)
        return now - timedelta(days=days)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--since: {value!r} is neither like 30d nor a date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("report")
@click.option("--since", default="30d", show_default=True, help="Period: 30d, 8w, a date, all.")
@click.option("--campaign", "campaign_id", help="Only this campaign.")
@click.option(
    "--shop",
    help="Only this shop (its key, e.g. x.myshopify.com; '' the default shop): its funnel and "
    "KPIs. Default: every shop together.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def report(since: str, campaign_id: str | None, shop: str | None, output: str) -> None:
    """Funnel per campaign, variant and arm; uplift with its 95% CI; shop KPIs.

    Reads the tables the measure_outcomes DAG refreshes (hourly); see README "Outcomes".
    """
    from postpurchase.cli.db import open_database
    from postpurchase.outcomes.report import as_csv, as_json, as_table, build_report
    from postpurchase.store.database import session_factory

    now = datetime.now(UTC)
    start = parse_since(since, now)
    engine = open_database()
    try:
        with session_factory(engine)() as session:
            data = build_report(
                session,
                since=start,
                campaign=campaign_id,
                now=now,
                shop=shop.strip().lower() if shop is not None else None,
            )
    finally:
        engine.dispose()
    render = {"json": as_json, "csv": as_csv, "table": as_table}[output]
    click.echo(render(data), nl=output == "json")
