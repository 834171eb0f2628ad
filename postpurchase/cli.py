"""The ``postpurchase`` command.

Errors the user can fix print as one line on stderr (exit 2); anything else is a bug and
prints its traceback only with ``--debug`` (exit 1).
"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine
from postpurchase.exceptions import PostpurchaseError


class _Group(click.Group):
    """A click group that turns exceptions into one clear line unless --debug was given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except PostpurchaseError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.secho(f"error: {exc}", err=True, fg="red")
            sys.exit(2)
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(
                f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
                err=True,
                fg="red",
            )
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="postpurchase")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Post-purchase automation: webhooks in, scheduled after-sales messages out."""
    ctx.obj = {"debug": debug}


def _open_database() -> Engine:
    """The engine's database from settings, once it answers (DatabaseUnavailable otherwise)."""
    from postpurchase.settings import ENV_PREFIX, load_settings
    from postpurchase.store.database import engine_from_settings, wait_for_database

    settings = load_settings()
    engine = engine_from_settings(settings)
    wait_for_database(
        engine, timeout=settings.database_connect_timeout, setting=f"{ENV_PREFIX}DATABASE_URL"
    )
    return engine


@main.group()
def db() -> None:
    """The engine's own database (never Airflow's)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema."""
    from postpurchase.store import schema

    engine = _open_database()
    shown = engine.url.render_as_string(hide_password=True)
    before = schema.current_revision(engine)
    schema.upgrade(engine)
    after = schema.current_revision(engine)
    if before == after:
        click.echo(f"database {shown} is already at revision {after} (newest)")
    else:
        click.echo(f"database {shown} migrated from {before or 'empty'} to revision {after}")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the schema change is.")
def db_revision(message: str) -> None:
    """(developers) Write a migration for changes made to the models."""
    from postpurchase.store import schema

    engine = _open_database()
    schema.upgrade(engine)
    schema.new_revision(engine, message)


@db.command("status")
def db_status() -> None:
    """Row counts of the main tables, by status where there is one."""
    from postpurchase.store.status import table_counts

    engine = _open_database()
    click.echo(f"database {engine.url.render_as_string(hide_password=True)}")
    for line in table_counts(engine):
        click.echo(f"  {line}")
