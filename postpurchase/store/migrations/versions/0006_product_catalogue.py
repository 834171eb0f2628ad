"""The shop's product catalogue: type, tags, collections, image and page of each product.

Order lines carry no product type (Shopify) or categories (WooCommerce); conditions, loyalty
bonuses and messages read them from here. Rows come from product webhooks, or are placed
for a product first seen in an order and filled by a look-up through the platform's API.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNKNOWN = sa.text("source_updated_at IS NULL")


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("product_type", sa.String(length=255), nullable=True),
        sa.Column("vendor", sa.String(length=255), nullable=True),
        sa.Column("handle", sa.String(length=255), nullable=True),
        sa.Column("tags", json, nullable=False),
        sa.Column("collections", json, nullable=False),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lookup_attempts", sa.Integer(), nullable=False),
        sa.Column("lookup_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lookup_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_products_source_external_id")),
    )
    op.create_index(
        "ix_products_unknown",
        "products",
        ["lookup_after"],
        postgresql_where=_UNKNOWN,
        sqlite_where=_UNKNOWN,
    )


def downgrade() -> None:
    op.drop_index("ix_products_unknown", table_name="products")
    op.drop_table("products")
