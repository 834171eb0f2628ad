"""The migrations build exactly the schema the models describe, on every backend."""

import warnings
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, delete, select, update
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from postpurchase.store import schema
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Base,
    Channel,
    Customer,
    InboxEvent,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
    Product,
    Touchpoint,
)
from postpurchase.store.statements import _json_insert, insert_ignoring_conflicts, update_by_id


def test_migrations_match_models(engine):
    with engine.connect() as conn, warnings.catch_warnings():
        # SQLAlchemy does not read indexes on expressions back from SQLite (Alembic then
        # leaves them out of the comparison): they are checked below.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    assert schema.current_revision(engine) == schema.head_revision()


def test_the_indexes_on_expressions_are_migrated(engine):
    """Each index the models declare on an expression is in the migrated database, on that
    expression (the comparison above cannot see them on SQLite)."""
    declared = {
        index.name: (table.name, str(expression.compile(engine)))
        for table in Base.metadata.tables.values()
        for index in table.indexes
        for expression in index.expressions
        if not isinstance(expression, Column)
    }
    assert {"ix_redemptions_upper_code", "ix_referral_codes_upper_code"} <= set(declared)
    listed = (
        "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        if engine.dialect.name == "postgresql"
        else "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
    )
    with engine.connect() as conn:
        found = {name: (table, sql) for name, table, sql in conn.exec_driver_sql(listed)}
    for name, (table, expression) in declared.items():
        function, column = expression.removesuffix(")").split("(")  # upper, redemptions.code
        migrated_table, definition = found[name]
        # as the database writes it back: upper((code)::text) on PostgreSQL
        assert migrated_table == table
        assert f"{function}(" in definition.lower()
        assert column.removeprefix(f"{table}.") in definition


def test_partial_indexes_are_migrated_with_their_conditions(engine):
    """Each partial index the models declare is in the migrated database with its condition
    (the comparison above does not look at conditions)."""
    dialect = engine.dialect.name
    declared = {
        index.name: str(index.dialect_options[dialect]["where"])
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[dialect]["where"] is not None
    }
    assert declared["ix_touchpoints_provider_message_id"] == "provider_message_id IS NOT NULL"
    listed = (
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        if dialect == "postgresql"
        else "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    )
    with engine.connect() as conn:
        found = dict(conn.exec_driver_sql(listed).all())
    for name, condition in declared.items():
        # as the database writes it back: WHERE ((status)::text = 'planned'::text) on PostgreSQL
        written = found[name].replace("(", "").replace(")", "").replace("::text", "")
        assert written.endswith(f" WHERE {condition}"), found[name]


def test_upgrade_twice_is_a_no_op(engine):
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()


def _customer(session, external_id="7391"):
    customer = Customer(source="shopify", external_id=external_id, email="ana@example.com")
    session.add(customer)
    session.flush()
    return customer


def test_money_keeps_every_cent_and_times_stay_utc(store):
    paris = timezone(timedelta(hours=1))
    with transaction(store) as session:
        order = Order(
            source="shopify",
            external_id="5001",
            currency="EUR",
            subtotal=Decimal("1234567.8915"),
            total=Decimal("0.10") + Decimal("0.20"),
            placed_at=datetime(2026, 11, 27, 10, 30, tzinfo=paris),
        )
        session.add(order)
    with store() as session:
        stored = session.scalars(select(Order)).one()
    assert stored.subtotal == Decimal("1234567.8915")
    assert stored.total == Decimal("0.30")
    assert stored.placed_at == datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    assert stored.placed_at.tzinfo is not None


def test_naive_datetimes_are_refused(store):
    with pytest.raises(StatementError, match="naive datetime"), transaction(store) as session:
        session.add(
            Order(source="shopify", external_id="1", currency="EUR", placed_at=datetime(2026, 1, 1))
        )


def test_bulk_writes_refuse_a_naive_datetime_among_aware_ones(store):
    """Bulk inserts and updates write times as text on PostgreSQL, where one without its zone
    would be read as the server's local time: a single naive value refuses the whole write."""
    rows = [
        {"source": "shopify", "external_id": str(n), "currency": "EUR", "placed_at": at}
        for n, at in enumerate([datetime(2026, 1, 1, tzinfo=UTC), None] * 50)
    ]
    naive = {**rows[0], "external_id": "naive", "placed_at": datetime(2026, 1, 1)}
    with pytest.raises((ValueError, StatementError), match="naive|timezone-aware"):
        with transaction(store) as session:
            insert_ignoring_conflicts(session, Order, [*rows, naive])
    with transaction(store) as session:
        assert insert_ignoring_conflicts(session, Order, rows) == 100
    with store() as session:
        placed = session.scalars(select(Order.placed_at).where(Order.external_id == "0")).one()
    assert placed == datetime(2026, 1, 1, tzinfo=UTC)
    # and so do the updates of a batch's changed rows
    with pytest.raises((ValueError, StatementError), match="naive|timezone-aware"):
        with transaction(store) as session:
            update_by_id(session, Order, [{"id": 1, "placed_at": datetime(2026, 1, 2)}])


def test_bulk_writes_store_each_value_as_given(store, engine):
    """Bulk inserts and updates (rows sent as JSON arrays on PostgreSQL) store what they are
    given: a None as NULL, a JSON column's value as it is (a JSON string too), amounts to the
    column's places, times with their zone; a string too long for its column is refused, not
    cut short."""
    row = {
        "source": "shopify",
        "external_id": "p1",
        "title": 'Trail "Runner" \\ GTX, é',
        "product_type": None,
        "tags": ["trail", "x"],
        "collections": "not a list",
        "deleted_at": datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5))),
        "lookup_attempts": 2,
    }
    with transaction(store) as session:
        assert insert_ignoring_conflicts(session, Product, [row]) == 1
        assert insert_ignoring_conflicts(session, Product, [row]) == 0
        product = session.scalars(select(Product)).one()
        update_by_id(session, Product, [{"id": product.id, "title": None, "tags": {"a": [1]}}])
    with store() as session:
        product = session.scalars(select(Product)).one()
        assert (product.title, product.product_type) == (None, None)
        assert (product.tags, product.collections) == ({"a": [1]}, "not a list")
        assert product.deleted_at == datetime(2026, 1, 1, 17, tzinfo=UTC)
        assert product.lookup_attempts == 2
    with transaction(store) as session:
        customer = _customer(session)
        order = {"source": "shopify", "external_id": "o1", "currency": "EUR"}
        insert_ignoring_conflicts(session, Order, [{**order, "total": Decimal("12.34567")}])
        stored = session.scalars(select(Order)).one()
        update_by_id(session, Order, [{"id": stored.id, "customer_id": customer.id}])
    with store() as session:
        stored = session.scalars(select(Order)).one()
        assert (stored.total, stored.customer_id) == (Decimal("12.3457"), customer.id)
    if engine.dialect.name == "postgresql":  # SQLite keeps a string of any length
        too_long = {**row, "external_id": "p2", "handle": "h" * 256}
        with pytest.raises(DataError, match="too long"), transaction(store) as session:
            insert_ignoring_conflicts(session, Product, [too_long])
        with pytest.raises(DataError, match="too long"), transaction(store) as session:
            update_by_id(session, Product, [{"id": product.id, "handle": "h" * 256}])


def test_bulk_inserts_skip_a_row_whose_unique_key_is_taken(store, engine):
    """A bulk insert skips a row whose unique key is taken: the key the rows name (a
    product's platform key) and, when the rows give their ids, the primary key too. On
    PostgreSQL a primary key drawn from its sequence cannot conflict: the insert names the
    other key as its only conflict target, so that each row is not looked up in both."""
    product = {"source": "shopify", "external_id": "p1", "tags": [], "collections": []}
    order = {"id": 9001, "source": "shopify", "external_id": "o1", "currency": "EUR"}
    with transaction(store) as session:
        assert insert_ignoring_conflicts(session, Product, [product]) == 1
        assert insert_ignoring_conflicts(session, Product, [product]) == 0
        assert insert_ignoring_conflicts(session, Product, [{**product, "shop": "b"}]) == 1
        assert insert_ignoring_conflicts(session, Order, [order]) == 1
        # taken: its id, then its platform key
        assert insert_ignoring_conflicts(session, Order, [{**order, "external_id": "o2"}]) == 0
        assert insert_ignoring_conflicts(session, Order, [{**order, "id": 9002}]) == 0
        assert session.scalars(select(Order.external_id)).all() == ["o1"]
    if engine.dialect.name == "postgresql":
        drawn, _ = _json_insert(Product.__table__, tuple(product), engine.dialect)
        assert "ON CONFLICT (source, shop, external_id) DO NOTHING" in str(drawn)
        given, _ = _json_insert(Order.__table__, tuple(order), engine.dialect)
        assert "ON CONFLICT DO NOTHING" in str(given)


def test_one_inbox_row_per_delivery(store):
    def deliver(session):
        session.add(
            InboxEvent(
                source="shopify",
                dedupe_key="shopify:orders/paid:98ab7c",
                event_type="order.paid",
                payload={"type": "order.paid"},
            )
        )

    with transaction(store) as session:
        deliver(session)
    with pytest.raises(IntegrityError), transaction(store) as session:
        deliver(session)
    with store() as session:
        assert len(session.scalars(select(InboxEvent)).all()) == 1


def test_one_touchpoint_per_subject_campaign_step_and_channel(store):
    due = datetime(2026, 12, 1, 15, tzinfo=UTC)
    with transaction(store) as session:
        customer = _customer(session)
        customer_id = customer.id
        session.add(
            Touchpoint(
                subject_key="order:1",
                campaign_id="review_request",
                step=0,
                channel=Channel.EMAIL,
                customer_id=customer_id,
                due_at=due,
            )
        )
        # the same step by SMS is a different touchpoint
        session.add(
            Touchpoint(
                subject_key="order:1",
                campaign_id="review_request",
                step=0,
                channel=Channel.SMS,
                customer_id=customer_id,
                due_at=due,
            )
        )
    with pytest.raises(IntegrityError), transaction(store) as session:
        session.add(
            Touchpoint(
                subject_key="order:1",
                campaign_id="review_request",
                step=0,
                channel=Channel.EMAIL,
                customer_id=customer_id,
                due_at=due + timedelta(days=1),
            )
        )


def test_one_ledger_row_per_cause(store):
    with transaction(store) as session:
        customer_id = _customer(session).id
        session.add(
            LoyaltyLedgerEntry(
                customer_id=customer_id, kind=LedgerKind.AWARD, points=120, cause="award:order:1"
            )
        )
    with pytest.raises(IntegrityError), transaction(store) as session:
        session.add(
            LoyaltyLedgerEntry(
                customer_id=customer_id, kind=LedgerKind.AWARD, points=120, cause="award:order:1"
            )
        )


def test_the_ledger_is_append_only_in_the_database(store):
    with transaction(store) as session:
        customer_id = _customer(session).id
        session.add(
            LoyaltyLedgerEntry(
                customer_id=customer_id, kind=LedgerKind.AWARD, points=120, cause="award:order:1"
            )
        )
    edits = (
        update(LoyaltyLedgerEntry).values(points=1200),
        delete(LoyaltyLedgerEntry),
    )
    for edit in edits:
        with pytest.raises(IntegrityError, match="append-only"), transaction(store) as session:
            session.execute(edit)
    # corrections are new rows
    with transaction(store) as session:
        session.add(
            LoyaltyLedgerEntry(
                customer_id=customer_id, kind=LedgerKind.ADJUSTMENT, points=-20, cause="adjust:1"
            )
        )
    with store() as session:
        rows = session.execute(select(LoyaltyLedgerEntry.points).order_by(LoyaltyLedgerEntry.id))
        assert rows.scalars().all() == [120, -20]


def test_unknown_status_values_are_refused_by_the_database(store):
    with pytest.raises((IntegrityError, StatementError)), transaction(store) as session:
        session.add(
            InboxEvent(
                source="shopify",
                dedupe_key="k",
                event_type="order.paid",
                payload={},
                status="lost",
            )
        )
