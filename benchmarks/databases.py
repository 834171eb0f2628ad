"""The benchmark's own database: emptied and migrated before each run, and filled in SQL."""

from __future__ import annotations

from sqlalchemy import Engine, text

from postpurchase.store import schema
from postpurchase.store.models import Base


def fresh_schema(engine: Engine) -> None:
    """Empty the benchmark's database (every table of ours, on PostgreSQL the whole public
    schema) and migrate it to the current schema, as a new installation starts."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    schema.upgrade(engine)


def number_series(engine: Engine, n: int) -> str:
    """A FROM item of the rows ``g`` = 1..``n``, to generate data in SQL on either database."""
    if engine.dialect.name == "postgresql":
        return f"(SELECT g::bigint AS g FROM generate_series(1, {n}) AS g) AS s"
    return (
        f"(WITH RECURSIVE r(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM r WHERE g < {n}) "
        "SELECT g FROM r) AS s"
    )
