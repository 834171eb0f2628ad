"""Databases at an earlier revision of the schema, for tests of the migrations after it.

SQLite gets a file of its own; PostgreSQL a schema of its own beside the shared test schema
(never in it), dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from project_paths import POSTGRES_URL_ENV
from sqlalchemy import Engine, create_engine, text

from postpurchase.settings import parse_database_url
from postpurchase.store import schema
from postpurchase.store.database import make_engine

DIALECTS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def engine_at(dialect: str, revision: str, *, tmp_path: Path, name: str) -> Iterator[Engine]:
    """An empty engine database of ``dialect`` migrated only to ``revision``."""
    if dialect == "sqlite":
        engine = make_engine(parse_database_url(f"sqlite:///{tmp_path / 'old.db'}"))
        schema.upgrade(engine, revision)
        yield engine
        engine.dispose()
        return
    raw = os.environ.get(POSTGRES_URL_ENV)
    if not raw:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    url = parse_database_url(raw)
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {name}"))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={name}"})
    try:
        schema.upgrade(engine, revision)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()
