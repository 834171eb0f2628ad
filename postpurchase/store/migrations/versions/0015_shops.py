"""Shops as a key: customers, orders, touchpoints and products belong to a shop.

Each gets ``shop`` (text, NOT NULL, "" for the engine's single default shop), and the unique
keys of customers, orders and products become (source, shop, external id), so two shops
sharing platform ids keep separate rows.

Existing rows take the shop of the inbox event that created them: the first inbox row whose
subject is the row's platform id (orders: an order event's subject; products: a product
event's), else, for a customer, the shop of their first order, and for a product, the shop of
the first order that listed it. A touchpoint takes its customer's shop. Rows no event names
stay in the default shop "". The fill is set-based: the inbox is read once, grouped, not
searched once per row.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYED = ("customers", "orders", "products")
_TABLES = (*_KEYED, "touchpoints")

# The first inbox event about each platform id, of the events that can create such a row.
_FIRST_EVENTS = """
    SELECT e.source, e.subject_id, COALESCE(e.shop, '') AS shop
    FROM inbox_events e
    JOIN (
        SELECT source, subject_id, MIN(id) AS id FROM inbox_events
        WHERE subject_id IS NOT NULL AND ({kinds})
        GROUP BY source, subject_id
    ) f ON f.id = e.id
"""
_ORDER_EVENTS = "event_type NOT LIKE 'customer.%' AND event_type NOT LIKE 'product.%'"
_CUSTOMER_EVENTS = "event_type LIKE 'customer.%'"
_PRODUCT_EVENTS = "event_type LIKE 'product.%'"


def _fill_from_inbox(table: str, kinds: str) -> None:
    op.execute(
        f"UPDATE {table} SET shop = f.shop FROM ({_FIRST_EVENTS.format(kinds=kinds)}) f"
        f" WHERE f.source = {table}.source AND f.subject_id = {table}.external_id"
    )


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("shop", sa.Text(), server_default="", nullable=False))
    _fill_from_inbox("orders", _ORDER_EVENTS)
    # a customer's first order tells their shop; a customer event, for those without orders
    op.execute(
        "UPDATE customers SET shop = o.shop FROM ("
        " SELECT o.customer_id, o.shop FROM orders o JOIN ("
        "  SELECT customer_id, MIN(id) AS id FROM orders WHERE customer_id IS NOT NULL"
        "  GROUP BY customer_id) f ON f.id = o.id"
        ") o WHERE o.customer_id = customers.id"
    )
    op.execute(
        "UPDATE customers SET shop = f.shop"
        f" FROM ({_FIRST_EVENTS.format(kinds=_CUSTOMER_EVENTS)}) f"
        " WHERE f.source = customers.source AND f.subject_id = customers.external_id"
        " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = customers.id)"
    )
    # a product takes the shop of the first order line that named it, or of its product event
    op.execute(
        "UPDATE products SET shop = f.shop FROM ("
        " SELECT o.source, i.product_id, o.shop FROM order_items i"
        " JOIN orders o ON o.id = i.order_id JOIN ("
        "  SELECT MIN(i2.id) AS id FROM order_items i2 JOIN orders o2 ON o2.id = i2.order_id"
        "  WHERE i2.product_id IS NOT NULL GROUP BY o2.source, i2.product_id"
        " ) first ON first.id = i.id"
        ") f WHERE f.source = products.source AND f.product_id = products.external_id"
    )
    _fill_from_inbox("products", _PRODUCT_EVENTS)
    op.execute(
        "UPDATE touchpoints SET shop = c.shop FROM customers c"
        " WHERE c.id = touchpoints.customer_id AND c.shop <> ''"
    )
    for table in _KEYED:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_source_external_id", type_="unique")
            batch.create_unique_constraint(
                f"uq_{table}_source_shop_external_id", ["source", "shop", "external_id"]
            )


def downgrade() -> None:
    # Fails, as it must, when two shops hold rows with the same platform id.
    for table in _KEYED:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_source_shop_external_id", type_="unique")
            batch.create_unique_constraint(
                f"uq_{table}_source_external_id", ["source", "external_id"]
            )
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("shop")
