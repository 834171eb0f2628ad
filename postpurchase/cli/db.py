"""``postpurchase db``: the engine's own database."""

from __future__ import annotations

import click
from sqlalchemy import Engine


def open_database(*, migrated: bool = True) -> Engine:
    """The engine's database from settings, once it answers (DatabaseUnavailable otherwise).

    With ``migrated`` (every command but those that migrate), a database whose schema is
    missing or older than this version's is a ConfigError saying to run ``db upgrade``,
    rather than a failure deep in some query.
    """
    from postpurchase.exceptions import ConfigError
    from postpurchase.settings import ENV_PREFIX, load_settings
    from postpurchase.store import schema
    from postpurchase.store.database import engine_from_settings, wait_for_database

    settings = load_settings()
    engine = engine_from_settings(settings)
    wait_for_database(
        engine, timeout=settings.database_connect_timeout, setting=f"{ENV_PREFIX}DATABASE_URL"
    )
    if migrated:
        current, newest = schema.current_revision(engine), schema.head_revision()
        if current != newest:
            shown = engine.url.render_as_string(hide_password=True)
            engine.dispose()
            state = f"is at revision {current}" if current else "has no postpurchase tables"
            raise ConfigError(
                f"database {shown} {state}, this version needs {newest}: "
                "run `postpurchase db upgrade` first"
            )
    return engine


@click.group()
def db() -> None:
    """The engine's own database (never Airflow's)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema."""
    from postpurchase.store import schema

    engine = open_database(migrated=False)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        before = schema.current_revision(engine)
        schema.upgrade(engine)
        after = schema.current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"database {shown} is already at revision {after} (newest)")
    else:
        click.echo(f"database {shown} migrated from {before or 'empty'} to revision {after}")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the schema change is.")
def db_revision(message: str) -> None:
    """(developers) Write a migration for changes made to the models."""
    from postpurchase.store import schema

    engine = open_database(migrated=False)
    try:
        schema.upgrade(engine)
        schema.new_revision(engine, message)
    finally:
        engine.dispose()


@db.command("status")
def db_status() -> None:
    """Schema revision and row counts of the main tables, by status where there is one."""
    from postpurchase.store import schema
    from postpurchase.store.status import table_counts

    engine = open_database()
    try:
        revision = schema.current_revision(engine)
        lines = table_counts(engine)
    finally:
        engine.dispose()
    shown = engine.url.render_as_string(hide_password=True)
    click.echo(f"database {shown} at revision {revision} (newest)")
    for line in lines:
        click.echo(f"  {line}")
