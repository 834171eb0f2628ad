"""``postpurchase consent``: what a customer agreed to, and the trail that shows it."""

from __future__ import annotations

import click

from postpurchase.cli.db import open_database
from postpurchase.cli.shops import shop_option


@click.group()
def consent() -> None:
    """Customers' consent: current state per purpose and every change, with its evidence.

    CUSTOMER is an email, a platform customer id, or platform:id when an id is ambiguous;
    --shop names the shop when the engine serves several.
    """


@consent.command("show")
@click.argument("customer")
@shop_option
def consent_show(customer: str, shop: str | None) -> None:
    """Show a customer's consent per purpose and every change of it, oldest first."""
    from sqlalchemy import select

    from postpurchase.loyalty.customers import find_customer
    from postpurchase.store.database import session_factory, transaction
    from postpurchase.store.models import ConsentChange, ConsentPurpose

    engine = open_database()
    try:
        with transaction(session_factory(engine)) as session:
            found = find_customer(session, customer, shop)
            label = f"{found.source}:{found.external_id}" + (
                f" ({found.email})" if found.email else ""
            )
            current = []
            for purpose in ConsentPurpose:
                prefix = f"{purpose.value}_consent"
                state = getattr(found, f"{prefix}_state")
                source = getattr(found, f"{prefix}_source") or "-"
                at = getattr(found, f"{prefix}_at")
                when = at.strftime("%Y-%m-%d %H:%M UTC") if at else "-"
                current.append(f"  {purpose.value:<16} {state.value:<8} {source:<21} {when}")
            trail = session.execute(
                select(ConsentChange)
                .where(ConsentChange.customer_id == found.id)
                .order_by(ConsentChange.id)
            ).scalars()
            changes = [
                f"  {c.occurred_at:%Y-%m-%d %H:%M}  {c.purpose.value:<16} "
                f"{c.from_state.value} -> {c.to_state.value}  {c.source}  {c.reference or '-'}"
                for c in trail
            ]
    finally:
        engine.dispose()
    click.echo(label)
    click.echo("\n".join(current))
    click.echo("changes (UTC, when the customer said it):" if changes else "no changes recorded")
    for line in changes:
        click.echo(line)
