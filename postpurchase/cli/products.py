"""``postpurchase products``: the product catalogue, and looking up unknown products now."""

from __future__ import annotations

import click

from postpurchase.cli.db import open_database


@click.group()
def products() -> None:
    """The product catalogue kept from product webhooks and the platforms' APIs."""


@products.command("status")
def products_status() -> None:
    """Products per platform: described, deleted, and unknown (seen only in orders)."""
    from sqlalchemy import case, func, select

    from postpurchase.store.database import session_factory
    from postpurchase.store.models import Product

    engine = open_database()
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(
                    Product.source,
                    func.count(Product.source_updated_at),
                    func.count(Product.deleted_at),
                    func.sum(case((Product.source_updated_at.is_(None), 1), else_=0)),
                    func.max(Product.lookup_error),
                )
                .group_by(Product.source)
                .order_by(Product.source)
            ).all()
    finally:
        engine.dispose()
    if not rows:
        click.echo("no products yet: connect the product webhooks (see the README)")
    for source, known, deleted, unknown, error in rows:
        line = f"{source}: {known} described ({deleted} deleted), {unknown or 0} unknown"
        click.echo(line + (f"; last look-up error: {error}" if unknown and error else ""))


@products.command("lookup")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Products to look up at most.",
)
def products_lookup(limit: int) -> None:
    """Look up now, through the platform's API, the unknown products whose look-up is due.

    Needs the API credentials (see the README); the processing DAG does the same a few
    products per run.
    """
    from postpurchase.settings import load_settings
    from postpurchase.tasks.processing import look_up_unknown_products

    open_database().dispose()
    settings = load_settings().model_copy(update={"product_lookups_per_run": limit})
    click.echo(look_up_unknown_products(settings))
