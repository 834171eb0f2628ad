"""The ``--shop`` option of commands that take CUSTOMER: which shop's customer is meant when
one engine serves several shops (see "Several shops" in the README)."""

from __future__ import annotations

import click

shop_option = click.option(
    "--shop",
    default=None,
    help=(
        "The customer's shop (a Shopify shop domain, a WooCommerce site, a generic event's"
        ' shop; "" for events that named none), when CUSTOMER is found in several shops.'
    ),
)
