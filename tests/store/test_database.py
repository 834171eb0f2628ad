"""Sessions: what a read-only session locks, on SQLite and PostgreSQL."""

from sqlalchemy import func, select, update

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
