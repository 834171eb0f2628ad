"""Migration 0015 gives existing rows the shop of the inbox event that made them, keeps every
row (SQLite rebuilds the tables: nothing referring to them may be lost), and keys customers,
orders and products by (source, shop, platform id)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from old_schemas import DIALECTS, engine_at
from sqlalchemy import Engine, MetaData, insert, select
from sqlalchemy.exc import IntegrityError

from postpurchase.store import schema

SHOP_A = "northline-outdoor.myshopify.com"
SHOP_B = "second-store.myshopify.com"
AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(params=DIALECTS)
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine database migrated to 0014, the schema before shops were a key."""
    with engine_at(request.param, "0014", tmp_path=tmp_path, name="shops_migration_test") as engine:
        yield engine


def _tables(engine: Engine) -> MetaData:
    tables = MetaData()
    with warnings.catch_warnings():
        # SQLAlchemy does not read indexes on expressions (0020) back from SQLite: none is
        # needed here.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        tables.reflect(bind=engine)
    return tables


def _events(conn, t, *rows: tuple[str | None, str, str | None]) -> None:
    """Inbox rows (shop, event type, subject id), in this order (ids grow)."""
    for n, (shop, event_type, subject) in enumerate(rows):
        conn.execute(
            insert(t.tables["inbox_events"]).values(
                source="shopify",
                dedupe_key=f"shopify:{shop}:{n}",
                event_type=event_type,
                shop=shop,
                subject_id=subject,
                occurred_at=AT,
                payload={},
                status="done",
                attempts=1,
            )
        )


def _order(conn, t, external_id: str, customer_id: int | None) -> int:
    money = dict.fromkeys(
        ("subtotal", "total", "total_tax", "total_discounts", "total_shipping", "refunded_amount"),
        Decimal("10.00"),
    )
    return int(
        conn.execute(
            insert(t.tables["orders"])
            .values(
                source="shopify",
                external_id=external_id,
                customer_id=customer_id,
                currency="USD",
                **money,
            )
            .returning(t.tables["orders"].c.id)
        ).scalar_one()
    )


def _customer(conn, t, external_id: str) -> int:
    table = t.tables["customers"]
    return int(
        conn.execute(
            insert(table).values(source="shopify", external_id=external_id).returning(table.c.id)
        ).scalar_one()
    )


def test_rows_take_the_shop_of_the_event_that_made_them(old_engine):
    t = _tables(old_engine)
    with old_engine.begin() as conn:
        _events(
            conn,
            t,
            (SHOP_A, "order.placed", "450789469"),  # made order 450789469
            (SHOP_A, "customer.updated", "1002"),  # a customer id equal to an order id
            (SHOP_B, "order.paid", "450789469"),  # later, the same id from another shop
            (SHOP_B, "order.placed", "1002"),
            (SHOP_B, "customer.created", "555"),  # a customer with no order
            (SHOP_B, "product.updated", "9"),
            (None, "order.placed", "G-1"),  # a generic event naming no shop
        )
        bob = _customer(conn, t, "207119551")
        account_only = _customer(conn, t, "555")
        unknown = _customer(conn, t, "777")
        first = _order(conn, t, "450789469", bob)
        _order(conn, t, "1002", None)
        _order(conn, t, "G-1", None)
        conn.execute(
            insert(t.tables["order_items"]).values(
                order_id=first,
                external_id="1",
                product_id="632910392",
                title="IPod Nano - 8gb",
                quantity=1,
                unit_price=Decimal("199.00"),
            )
        )
        for product_id in ("632910392", "9", "404"):
            conn.execute(
                insert(t.tables["products"]).values(
                    source="shopify",
                    external_id=product_id,
                    tags=[],
                    collections=[],
                    lookup_attempts=0,
                )
            )
        for customer in (bob, unknown):
            conn.execute(
                insert(t.tables["touchpoints"]).values(
                    subject_key=f"test:{customer}",
                    campaign_id="review_request",
                    step=0,
                    channel="email",
                    customer_id=customer,
                    order_id=first if customer == bob else None,
                    due_at=AT,
                    status="planned",
                    attempts=0,
                )
            )
        conn.execute(
            insert(t.tables["consent_changes"]).values(
                customer_id=bob,
                purpose="email_marketing",
                from_state="unknown",
                to_state="granted",
                source="migration",
                occurred_at=AT,
            )
        )

    schema.upgrade(old_engine)

    t = _tables(old_engine)
    with old_engine.connect() as conn:

        def shops(name: str, key: str) -> dict:
            table = t.tables[name]
            return dict(conn.execute(select(table.c[key], table.c.shop)).all())

        assert shops("orders", "external_id") == {
            "450789469": SHOP_A,
            "1002": SHOP_B,  # not the shop of customer 1002's event
            "G-1": "",
        }
        assert shops("customers", "id") == {bob: SHOP_A, account_only: SHOP_B, unknown: ""}
        assert shops("products", "external_id") == {"632910392": SHOP_A, "9": SHOP_B, "404": ""}
        assert shops("touchpoints", "customer_id") == {bob: SHOP_A, unknown: ""}
        # SQLite rebuilt the tables: what refers to them is all still there
        assert conn.execute(select(t.tables["order_items"].c.order_id)).scalars().all() == [first]
        assert len(conn.execute(select(t.tables["consent_changes"])).all()) == 1

    # the same platform ids in another shop are other rows; in the same shop, a duplicate
    with old_engine.begin() as conn:
        conn.execute(
            insert(t.tables["customers"]).values(
                source="shopify", shop=SHOP_B, external_id="207119551"
            )
        )
    with pytest.raises(IntegrityError), old_engine.begin() as conn:
        conn.execute(
            insert(t.tables["customers"]).values(
                source="shopify", shop=SHOP_A, external_id="207119551"
            )
        )
