"""``postpurchase preview``: render a campaign's messages to files, to look at before sending.

CAMPAIGN is a campaign id from the campaign file (its template is rendered, and a marketing
campaign's SMS gets the opt-out line as it would when sent), or else the name of a template
set (``templates/email/<NAME>.*``, ``templates/sms/<NAME>.txt.j2``) not yet in a campaign.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:  # the command line imports the package lazily, per command
    from postpurchase.messages.context import ShopProfile
    from postpurchase.messages.rendering import MessageRenderer, RenderedEmail, RenderedSms
    from postpurchase.settings import Settings


@click.command()
@click.argument("campaign")
@click.option(
    "--order",
    "order_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An order as JSON: Shopify, WooCommerce, a generic event or the canonical shape.",
)
@click.option(
    "--channel",
    type=click.Choice(["email", "sms"]),
    help="Render one channel only (default: every channel the campaign has templates for).",
)
@click.option("--locale", help="Render in this locale, e.g. fr or fr-CA (default: the order's).")
@click.option(
    "--delivery",
    type=click.Choice(["confirmed", "assumed"]),
    help="Delivery reported by a carrier, or only assumed from the fulfilment "
    "(default: confirmed for the sample, assumed for --order).",
)
@click.option(
    "--shop",
    "shop_key",
    default="",
    help="As this shop's messages: its brand (shops.yaml) and campaign overrides "
    "(default: the engine's own shop).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the files (default: var/preview/CAMPAIGN).",
)
def preview(
    campaign: str,
    order_file: Path | None,
    channel: Literal["email", "sms"] | None,
    locale: str | None,
    delivery: Literal["confirmed", "assumed"] | None,
    shop_key: str,
    out_dir: Path | None,
) -> None:
    """Render CAMPAIGN with sample data (or --order) and print the files written.

    With --order, the order's own customer and the loyalty rules' points for it are used;
    what the file cannot tell (balance, tier, delivery report, ...) is printed as assumed.
    """
    from postpurchase.exceptions import ConfigError
    from postpurchase.messages.context import ShopProfile, sample_context
    from postpurchase.messages.rendering import renderer_for
    from postpurchase.messages.tokens import signing_key
    from postpurchase.settings import load_settings
    from postpurchase.shop_settings.directory import shop_directory
    from postpurchase.tasks.dispatch import configured_lookup

    settings = load_settings()
    renderer = renderer_for(settings)
    spec = configured_lookup(settings, shop_key.strip().lower())(campaign)
    template = spec.template if spec is not None else campaign
    channels: list[Literal["email", "sms"]] = [
        c for c in ("email", "sms") if (channel is None or c == channel)
    ]
    available = [c for c in channels if renderer.has_template(c, template)]
    if not available:
        names = sorted(
            {p.name.split(".")[0] for p in (renderer.templates_dir / "email").glob("[!_]*.j2")}
        )
        raise ConfigError(
            f"no {'/'.join(channels)} templates for {campaign!r} in {renderer.templates_dir}; "
            f"known: {', '.join(names)}"
        )
    shop = ShopProfile.of(shop_directory(settings).get(shop_key), settings, signing_key(settings))
    confirmed = None if delivery is None else delivery == "confirmed"
    if order_file is not None:
        context = _order_file_context(
            settings, shop, renderer, order_file, campaign, template, locale, confirmed
        )
    else:
        click.echo("sample order and customer (use --order FILE for a real order)")
        context = sample_context(
            shop,
            campaign_id=campaign,
            locale=locale,
            delivery_confirmed=confirmed if confirmed is not None else True,
        )
    target = out_dir or settings.var_dir / "preview" / campaign
    target.mkdir(parents=True, exist_ok=True)
    marketing = spec is not None and spec.consent == "marketing"
    for name in available:
        _write(target, renderer.render(name, template, context, marketing=marketing))


def _order_file_context(
    settings: Settings,
    shop: ShopProfile,
    renderer: MessageRenderer,
    order_file: Path,
    campaign: str,
    template: str,
    locale: str | None,
    confirmed: bool | None,
) -> dict[str, Any]:
    """The template context for the order in ``order_file``; prints what it assumed."""
    from postpurchase.campaigns.config import load_campaigns
    from postpurchase.cli.order_files import read_order_file
    from postpurchase.loyalty.config import load_loyalty_config
    from postpurchase.messages.order_preview import order_preview_context

    shape, order = read_order_file(order_file)
    click.echo(f"{order.name or order.external_id}, read as a {shape}")
    configured = {c.id: c for c in load_campaigns(settings.campaigns_file).campaigns}
    built = order_preview_context(
        shop,
        order,
        load_loyalty_config(settings.loyalty_config),
        campaign_id=campaign,
        locale=locale,
        delivery_confirmed=confirmed,
        mentions_delivery=any(
            "delivery_confirmed" in path.read_text(encoding="utf-8")
            for path in renderer.templates_dir.glob(f"*/{template}.*j2")
        ),
        condition=configured[campaign].when if campaign in configured else None,
    )
    context = built.context
    for assumption in built.assumptions:
        click.echo(f"assumed: {assumption}")
    if built.not_sent:
        click.secho(
            f"note: {campaign} would send nothing for this order ({built.not_sent})",
            fg="yellow",
        )
    return context


def _write(target: Path, rendered: RenderedEmail | RenderedSms) -> None:
    """Write one rendered message under ``target`` and say where."""
    from postpurchase.messages.rendering import RenderedEmail

    if isinstance(rendered, RenderedEmail):
        html, text = target / "email.html", target / "email.txt"
        html.write_text(rendered.html, encoding="utf-8")
        text.write_text(f"Subject: {rendered.subject}\n\n{rendered.text}", encoding="utf-8")
        click.echo(f"email subject: {rendered.subject}")
        click.echo(f"wrote {html}")
        click.echo(f"wrote {text}")
    else:
        sms = target / "sms.txt"
        sms.write_text(rendered.body + "\n", encoding="utf-8")
        count = rendered.segments
        click.echo(
            f"wrote {sms} ({count.segments} segment(s), {count.encoding}, {count.units} units)"
        )
        for warning in rendered.warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
