"""``postpurchase customers``: answer a customer's request to see or erase their data."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from postpurchase.cli.db import open_database
from postpurchase.cli.shops import shop_option


@click.group()
def customers() -> None:
    """Data subject requests. CUSTOMER is an email, a platform customer id, or platform:id;
    --shop names the shop when the engine serves several."""


@customers.command("export")
@click.argument("customer")
@shop_option
def customers_export(customer: str, shop: str | None) -> None:
    """Export everything held about CUSTOMER as one JSON document: a file in
    POSTPURCHASE_PRIVACY_EXPORT_DIR, or (POSTPURCHASE_PRIVACY_EXPORT_TO=email) an email to
    POSTPURCHASE_PRIVACY_CONTACT_EMAIL with the document attached."""
    _answer(customer, shop, "export")


@customers.command("erase")
@click.argument("customer")
@shop_option
@click.confirmation_option(prompt="Erase this customer's personal data for good?")
def customers_erase(customer: str, shop: str | None) -> None:
    """Remove CUSTOMER's personal data from every table, payload and file (orders' totals,
    loyalty ledger and consent trail stay, without the person)."""
    _answer(customer, shop, "erase")


@customers.command("fulfil")
def customers_fulfil() -> None:
    """Fulfil the requests waiting in the inbox now (Shopify's compliance webhooks and
    POST /privacy/requests; housekeeping does it daily)."""
    from postpurchase.privacy.requests import fulfil_pending
    from postpurchase.settings import load_settings
    from postpurchase.store.database import session_factory

    engine = open_database()
    try:
        done = fulfil_pending(session_factory(engine), load_settings(), now=datetime.now(UTC))
    finally:
        engine.dispose()
    click.echo(f"fulfilled {done} privacy request(s)")


def _answer(reference: str, shop: str | None, kind: str) -> None:
    from postpurchase.loyalty.customers import find_customer
    from postpurchase.privacy import requests
    from postpurchase.settings import load_settings
    from postpurchase.store.database import session_factory, transaction

    settings = load_settings()
    engine = open_database()
    try:
        with transaction(session_factory(engine)) as session:
            found = find_customer(session, reference, shop)
            answer = requests.erase if kind == "erase" else requests.export
            request = answer(session, found, settings=settings, now=datetime.now(UTC))
            shown = ", ".join(f"{k}: {v}" for k, v in request.result.items())
            click.echo(f"request {request.id} ({kind}, customer {found.id}) fulfilled: {shown}")
    finally:
        engine.dispose()
