"""Sessions: what a read-only session locks, on SQLite and PostgreSQL; pooled connections
the server ended."""

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import func, select, text, update

from postpurchase.settings import parse_database_url
from postpurchase.store.database import make_engine, reading, session_factory, transaction
from postpurchase.store.models import Customer


def test_a_read_does_not_hold_up_another_processes_write(store, db_url):
    with transaction(store) as session:
        session.add(Customer(source="shopify", external_id="1", email="ana@example.com"))
    # A writer that gives up at once instead of queueing for SQLite's write lock.
    impatient = make_engine(parse_database_url(db_url), busy_timeout_ms=0)
    try:
        with reading(store) as session:
            assert session.scalar(select(func.count()).select_from(Customer)) == 1
            with transaction(session_factory(impatient)) as writer:
                writer.execute(update(Customer).values(first_name="Ana"))
    finally:
        impatient.dispose()
    with store() as session:
        assert session.scalar(select(Customer.first_name)) == "Ana"


def test_a_pooled_connection_the_server_ended_is_replaced_before_it_is_used(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("ending one session from the server is PostgreSQL's")
    engine = make_engine(parse_database_url(db_url))
    try:
        with engine.connect() as conn:
            pooled = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pooled])
            while admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pooled]
            ).fetchone():
                time.sleep(0.01)  # the backend is gone once its exit is seen
        with engine.connect() as conn:
            fresh = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert fresh != pooled
    finally:
        engine.dispose()


def test_times_are_read_in_utc_whatever_the_servers_zone(store, db_url):
    """The session's zone is UTC by name (psycopg's fast path), even where the database's
    own default is a shop's zone; the instant stored is the instant read."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a session's time zone is PostgreSQL's")
    paid = datetime(2026, 3, 29, 0, 30, tzinfo=ZoneInfo("Pacific/Auckland"))
    with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as admin:
        database = admin.execute("SELECT current_database()").fetchone()[0]
        admin.execute(f"ALTER DATABASE \"{database}\" SET TimeZone = 'Pacific/Auckland'")
    try:
        engine = make_engine(parse_database_url(db_url))
        with engine.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
            read = conn.execute(
                text("SELECT CAST(:paid AS timestamptz)"), {"paid": paid}
            ).scalar_one()
        engine.dispose()
    finally:
        with psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" RESET TimeZone')
    assert read == paid and read.tzinfo == UTC and read.hour == 11
