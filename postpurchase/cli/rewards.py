"""``postpurchase loyalty redeem|rewards|import-codes``: spending points from the command line."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from postpurchase.cli.shops import shop_option

if TYPE_CHECKING:
    from postpurchase.loyalty.config import LoyaltyConfig
    from postpurchase.settings import Settings


def _config() -> tuple[Settings, LoyaltyConfig]:
    from postpurchase.loyalty.config import load_loyalty_config
    from postpurchase.settings import load_settings

    settings = load_settings()
    return settings, load_loyalty_config(settings.loyalty_config)


@click.command("redeem")
@click.argument("customer")
@click.argument("reward")
@click.option(
    "--key",
    default=None,
    help="An idempotency key: repeating the command with the same key returns the same code.",
)
@shop_option
def loyalty_redeem(customer: str, reward: str, key: str | None, shop: str | None) -> None:
    """Spend a customer's points on REWARD: a single-use code on the shop's platform."""
    from postpurchase.airflow_glue.connections import connection_fields
    from postpurchase.loyalty.customers import find_customer
    from postpurchase.loyalty.ledger import balance
    from postpurchase.rewards.configured import configured_redeemer
    from postpurchase.store.database import transaction

    settings, config = _config()
    redeemer = configured_redeemer(settings, config, connection=connection_fields)
    with transaction(redeemer.store) as session:
        customer_id = find_customer(session, customer, shop).id
    key = key or f"cli:{uuid.uuid4().hex}"
    try:
        view = redeemer.redeem(customer_id, reward, key)
    finally:
        redeemer.close()
    with transaction(redeemer.store) as session:
        points = balance(session, customer_id)
    until = view.expires_at.strftime("%Y-%m-%d")
    if view.code:
        click.echo(f"{view.reward}: code {view.code} (until {until}), -{view.points} points")
    else:
        click.echo(f"{view.reward}: {view.status.value} ({view.error or 'code on its way'})")
    click.echo(f"balance {points} points; key {key}")


@click.command("rewards")
@click.argument("customer")
@shop_option
def loyalty_rewards(customer: str, shop: str | None) -> None:
    """Show the rewards a customer can afford and the codes they hold."""
    from postpurchase.rewards.account import account_of
    from postpurchase.store.database import open_store

    settings, config = _config()
    account = account_of(open_store(settings), config, customer_reference=customer, shop=shop)
    click.echo(f"{account.label}: {account.balance} points, tier {account.tier}")
    if account.next_tier:
        click.echo(f"  next tier {account.next_tier}: {account.progress_text}")
    for offer in account.rewards:
        mark = "can redeem" if offer.affordable else f"needs {offer.missing} more"
        click.echo(f"  {offer.name:<20} {offer.points:>6} pts  {offer.description}  [{mark}]")
    if account.referral_code:
        click.echo(f"  referral code {account.referral_code}")
    for held in account.codes:
        until = held.expires_at.strftime("%Y-%m-%d")
        click.echo(f"  code {held.code or '-':<20} {held.reward:<20} {held.status.value} {until}")


@click.command("import-codes")
@click.argument("reward")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def loyalty_import_codes(reward: str, csv_file: Path) -> None:
    """Add codes to REWARD's pool from a CSV file (first column, or a column named code)."""
    from postpurchase.exceptions import InvalidInput
    from postpurchase.rewards.pool_import import read_codes
    from postpurchase.rewards.redemption import free_pool_codes, import_pool_codes
    from postpurchase.store.database import open_store, transaction

    settings, config = _config()
    if config.reward(reward) is None:
        raise InvalidInput(f"REWARD: no reward {reward!r} in {settings.loyalty_config}")
    codes = read_codes(csv_file)
    with transaction(open_store(settings)) as session:
        added = import_pool_codes(session, reward, codes)
        free = free_pool_codes(session, reward)
    click.echo(f"{reward}: {added} code(s) added, {len(codes) - added} already there; {free} free")


def register_reward_commands(group: click.Group) -> None:
    for command in (loyalty_redeem, loyalty_rewards, loyalty_import_codes):
        group.add_command(command)
