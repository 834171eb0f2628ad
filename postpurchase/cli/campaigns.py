"""``postpurchase campaigns``: check, preview and re-plan marketing's campaigns."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from postpurchase.exceptions import InvalidInput


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option}: {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{option}: {value!r} needs a time zone offset, e.g. +00:00")
    return moment


@click.group()
def campaigns() -> None:
    """Campaigns from config/campaigns.yaml (POSTPURCHASE_CAMPAIGNS_FILE)."""


@campaigns.command("validate")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--templates",
    type=click.Path(path_type=Path),
    help="Templates folder (default: POSTPURCHASE_TEMPLATES_DIR).",
)
def validate(path: Path | None, templates: Path | None) -> None:
    """Check a campaign file: keys, durations, windows, events, conditions, templates.

    Prints one FILE:LINE: message per problem and exits 1 if there is any.
    """
    from postpurchase.campaigns.validation import campaign_problems
    from postpurchase.settings import load_settings

    settings = load_settings()
    path = path or settings.campaigns_file
    problems = campaign_problems(path, templates or settings.templates_dir)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{path}: valid")


@campaigns.command("timeline")
@click.argument("order_file", metavar="ORDER.json", type=click.Path(path_type=Path))
@click.option("--paid-at", help="When the order was paid (ISO 8601); default: placed_at if paid.")
@click.option("--fulfilled-at", help="When it was fulfilled (ISO 8601).")
@click.option("--delivered-at", help="When it was delivered; default: assumed after fulfilment.")
def timeline(
    order_file: Path, paid_at: str | None, fulfilled_at: str | None, delivered_at: str | None
) -> None:
    """The touchpoints an order would get, due in the customer's zone, or why not.

    ORDER.json holds a Shopify order (a webhook body or the Admin API's answer), a WooCommerce
    order, a generic webhook event, or an order in the canonical shape.
    """
    from zoneinfo import ZoneInfo

    from postpurchase.campaigns.timeline import order_timeline
    from postpurchase.campaigns.validation import load_valid_campaigns
    from postpurchase.cli.order_files import read_order_file
    from postpurchase.loyalty.config import load_loyalty_config
    from postpurchase.loyalty.estimate import estimated_award
    from postpurchase.settings import load_settings

    settings = load_settings()
    config = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    shape, order = read_order_file(order_file)
    award = estimated_award(order, load_loyalty_config(settings.loyalty_config))
    click.echo(f"{order.name or order.external_id}, read as a {shape}")
    catalogue, note = _catalogue_for(shape, order)
    click.echo(note)
    if order.placed_at is None:
        raise InvalidInput(f"{order_file}: the order has no placed_at")
    rows = order_timeline(
        order,
        config,
        shop_zone=ZoneInfo(settings.shop_time_zone),
        paid_at=_moment(paid_at, "--paid-at"),
        fulfilled_at=_moment(fulfilled_at, "--fulfilled-at"),
        delivered_at=_moment(delivered_at, "--delivered-at"),
        points_earned=award.points if award is not None else 0,
        catalogue=catalogue,
    )
    for row in rows:
        if row.due_at is None:
            click.echo(f"{row.campaign:<18} {row.note}")
            continue
        due = f"{row.due_at:%Y-%m-%d %H:%M %Z}"
        step = "first" if row.step == 0 else f"reminder {row.step}"
        extra = f"  ({row.note})" if row.note else ""
        click.echo(f"{row.campaign:<18} {due:<22} {row.channel:<6} {step}{extra}")


def _catalogue_for(shape: str, order: Any) -> tuple[Any, str]:
    """A function completing the order's lines from the engine's product catalogue, and a
    line saying what was found; without a database the lines count as they are."""
    from postpurchase.catalogue.products import catalogue_entries, with_catalogue
    from postpurchase.cli.db import open_database
    from postpurchase.exceptions import PostpurchaseError
    from postpurchase.settings import load_settings
    from postpurchase.store.database import session_factory

    source = {"Shopify order": "shopify", "WooCommerce order": "woocommerce"}.get(shape)
    if source is None:
        return None, "products: as the order's lines describe them"
    url = load_settings().sqlalchemy_url
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        # no engine database here yet: none is created just to read it
        return None, "products: no engine database, so no catalogue; lines count as they are"
    try:
        engine = open_database()
    except PostpurchaseError as exc:
        return None, f"products: the catalogue was not read ({exc}); lines count as they are"
    try:
        with session_factory(engine)() as session:
            entries = catalogue_entries(
                session, ((source, line.product_id or "") for line in order.lines)
            )
    finally:
        engine.dispose()
    known = sum(1 for entry in entries.values() if entry.known)
    products = len({line.product_id for line in order.lines if line.product_id})
    return (
        lambda items: with_catalogue(items, source, entries),
        f"products: {known} of {products} known to the catalogue",
    )


@campaigns.command("replan")
@click.argument("campaign_id", metavar="CAMPAIGN")
def replan(campaign_id: str) -> None:
    """Re-plan CAMPAIGN's pending touchpoints from the current configuration."""
    from zoneinfo import ZoneInfo

    from postpurchase.campaigns.validation import load_valid_campaigns
    from postpurchase.cli.db import open_database
    from postpurchase.processing.replan import replan_campaign
    from postpurchase.settings import load_settings
    from postpurchase.store.database import session_factory, transaction

    settings = load_settings()
    config = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    engine = open_database()
    try:
        with transaction(session_factory(engine)) as session:
            counts = replan_campaign(
                session, config, campaign_id, shop_zone=ZoneInfo(settings.shop_time_zone)
            )
    finally:
        engine.dispose()
    click.echo(
        f"{campaign_id}: {counts.moved} touchpoint(s) moved, {counts.added} added, "
        f"{counts.cancelled} cancelled, {counts.unchanged} unchanged"
    )


@campaigns.command("resume")
@click.argument("campaign_id", metavar="CAMPAIGN")
def resume(campaign_id: str) -> None:
    """Resume CAMPAIGN after the deliverability guard (or ``pause``) paused it.

    Its waiting touchpoints go out at the next dispatch; only sends from now on count
    towards the guard's rates.
    """
    from datetime import UTC

    from postpurchase.cli.db import open_database
    from postpurchase.outcomes.guard import resume_campaign
    from postpurchase.store.database import session_factory, transaction

    engine = open_database()
    try:
        with transaction(session_factory(engine)) as session:
            row = resume_campaign(session, campaign_id, now=datetime.now(UTC))
            reason = row.reason
    finally:
        engine.dispose()
    click.echo(f"{campaign_id}: resumed (it was paused for: {reason})")


@campaigns.command("pause")
@click.argument("campaign_id", metavar="CAMPAIGN")
@click.option("--reason", default="paused by hand", show_default=True)
def pause(campaign_id: str, reason: str) -> None:
    """Pause CAMPAIGN: its touchpoints wait, planned, until ``resume``."""
    from datetime import UTC

    from postpurchase.cli.db import open_database
    from postpurchase.outcomes.guard import pause_campaign
    from postpurchase.store.database import session_factory, transaction

    engine = open_database()
    try:
        with transaction(session_factory(engine)) as session:
            pause_campaign(session, campaign_id, reason=reason, now=datetime.now(UTC))
    finally:
        engine.dispose()
    click.echo(f"{campaign_id}: paused ({reason})")


@campaigns.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=30,
    show_default=True,
    help="How many days of processed inbox history to replay.",
)
def simulate(file: Path, days: int) -> None:
    """Replay the last DAYS of real inbox history against FILE, sending and storing nothing.

    Prints, per campaign, how many touchpoints FILE would plan, how many later events would
    cancel, and how many it would plan too late to send (past the campaign's expires_after),
    next to what the current campaign file (POSTPURCHASE_CAMPAIGNS_FILE) plans on the same
    history ("off": disabled there, "-": not in that file), then the most common reasons
    FILE plans nothing for a campaign. Both files go through the same
    processing code as the live engine, in scratch databases; send-time checks (consent,
    suppressions, frequency caps, quiet hours) are not simulated. An invalid FILE is reported
    as FILE:LINE: message (exit 2). Progress goes to stderr.
    """
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from postpurchase.campaigns.validation import load_campaign_source, load_valid_campaigns
    from postpurchase.cli.db import open_database
    from postpurchase.loyalty.config import load_loyalty_config
    from postpurchase.processing.simulation import simulate_campaigns
    from postpurchase.settings import load_settings
    from postpurchase.store.database import session_factory

    settings = load_settings()
    candidate = load_campaign_source(file, settings.templates_dir)
    current = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    engine = open_database()
    shown: list[int] = []

    def progress(done: int, total: int) -> None:
        step = done * 10 // max(total, 1)
        if not shown or step > shown[-1]:
            shown.append(step)
            click.echo(f"replayed {done} of {total} event(s)", err=True)

    try:
        simulation = simulate_campaigns(
            session_factory(engine),
            candidate,
            current,
            now=datetime.now(UTC),
            days=days,
            shop_zone=ZoneInfo(settings.shop_time_zone),
            loyalty=load_loyalty_config(settings.loyalty_config),
            progress=progress,
        )
    finally:
        engine.dispose()
    click.echo(f"file: {file}; current: {settings.campaigns_file}")
    for line in simulation_lines(simulation):
        click.echo(line)


def simulation_lines(simulation: Any) -> list[str]:
    """The table ``campaigns simulate`` prints: "off" for a disabled campaign, "-" for one
    the file does not have."""
    lines = [
        f"replayed {simulation.events} event(s) processed {simulation.since:%Y-%m-%d %H:%M} "
        f"to {simulation.until:%Y-%m-%d %H:%M} UTC (after {simulation.warm_up_events} earlier "
        "event(s) of the same orders, not counted)",
        f"{'':<20}" + "".join(f"{title:>18}" for title in ("planned", "cancelled", "too late")),
        f"{'campaign':<20}" + f"{'file':>9}{'current':>9}" * 3,
    ]

    def cell(counts: Any, field: str) -> str:
        if counts is None:
            return "-"
        return str(getattr(counts, field)) if counts.enabled else "off"

    for row in simulation.campaigns:
        cells = [
            f"{cell(counts, field):>9}"
            for field in ("planned", "cancelled", "too_late")
            for counts in (row.candidate, row.current)
        ]
        lines.append(f"{row.campaign_id:<20}" + "".join(cells))
    for row in simulation.campaigns:
        for reason, count in row.candidate.not_planned[:3] if row.candidate else ():
            lines.append(f"  {row.campaign_id} not planned ({count}x): {reason}")
    return lines
