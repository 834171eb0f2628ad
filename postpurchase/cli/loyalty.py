"""``postpurchase loyalty``: points balances and manual adjustments."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from postpurchase.cli.db import open_database
from postpurchase.cli.shops import shop_option

if TYPE_CHECKING:
    from postpurchase.store.models import Customer


def _describe(customer: Customer) -> str:
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    label = f"{customer.source}:{customer.external_id}"
    if customer.shop:
        label += f" of {customer.shop}"
    details = ", ".join(p for p in (name, customer.email or "") if p)
    return f"{label} ({details})" if details else label


@click.group()
def loyalty() -> None:
    """Loyalty points: balances and manual adjustments.

    CUSTOMER is an email, a platform customer id, or platform:id when an id is ambiguous;
    --shop names the shop when the engine serves several.
    """


@loyalty.command("balance")
@click.argument("customer")
@click.option("--last", default=10, show_default=True, help="How many recent ledger rows to show.")
@shop_option
def loyalty_balance(customer: str, last: int, shop: str | None) -> None:
    """Show a customer's points balance and their latest ledger rows."""
    from sqlalchemy import select

    from postpurchase.loyalty.customers import find_customer
    from postpurchase.loyalty.ledger import Ledger, balance
    from postpurchase.store.database import session_factory, transaction

    engine = open_database()
    try:
        with transaction(session_factory(engine)) as session:
            found = find_customer(session, customer, shop)
            click.echo(f"{_describe(found)}: {balance(session, found.id)} points")
            rows = session.scalars(
                select(Ledger)
                .where(Ledger.customer_id == found.id)
                .order_by(Ledger.id.desc())
                .limit(max(last, 0))
            ).all()
    finally:
        engine.dispose()
    for row in rows:
        when = row.created_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"  {when}  {row.points:+7d}  {row.kind.value:<10}  {row.note or row.cause}")


@loyalty.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("customer")
@click.argument("points", type=int)
@click.option("--reason", required=True, help="Why: kept on the ledger row.")
@click.option(
    "--key",
    default=None,
    help="An idempotency key: repeating the command with the same key changes nothing.",
)
@shop_option
def loyalty_adjust(
    customer: str, points: int, reason: str, key: str | None, shop: str | None
) -> None:
    """Add POINTS to a customer's balance (negative to take points away)."""
    from postpurchase.loyalty.customers import find_customer
    from postpurchase.loyalty.ledger import adjust
    from postpurchase.store.database import session_factory, transaction

    engine = open_database()
    try:
        with transaction(session_factory(engine)) as session:
            found = find_customer(session, customer, shop)
            change = adjust(session, customer_id=found.id, points=points, reason=reason, key=key)
            label = _describe(found)
    finally:
        engine.dispose()
    click.echo(f"{label}: {change.points:+d} points, balance {change.balance}")


# Spending points (postpurchase.rewards): redeem, rewards, import-codes.
from postpurchase.cli.rewards import register_reward_commands  # noqa: E402

register_reward_commands(loyalty)
