"""Schema migrations (Alembic), run from code so no alembic.ini has to be found on disk."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision``; a database already there is left untouched.

    On SQLite, foreign keys are not enforced while migrating: batch mode rebuilds a table by
    copying it and dropping the old one, and with them on, that drop would delete (cascade) or
    refuse for every row referring to it. They are checked before the migration commits.
    """
    config = _config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # outside any transaction, where SQLite takes this pragma into account
            _driver_pragma(conn, "foreign_keys=OFF")
        try:
            with conn.begin():
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                if sqlite:
                    _check_foreign_keys(conn)
        finally:
            if sqlite:
                _driver_pragma(conn, "foreign_keys=ON")


def _driver_pragma(conn: Connection, pragma: str) -> None:
    conn.connection.driver_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        shown = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in broken[:5])
        raise RuntimeError(f"the migration left rows referring to nothing: {shown}")


def new_revision(engine: Engine, message: str) -> None:
    """Write a revision file with the difference between models.py and the database at head."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True)
