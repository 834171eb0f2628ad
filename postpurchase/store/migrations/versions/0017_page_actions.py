"""Page actions: who did what from the pages in the Airflow UI, and why; and the indexes the
pages' lookups need (orders by number or platform id, customers by platform id, failed inbox
rows by reason: a partial index holding only those).

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_FAILED = sa.text("status = 'failed'")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "page_actions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_actions")),
    )
    op.create_index(op.f("ix_page_actions_subject"), "page_actions", ["subject"], unique=False)
    op.create_index("ix_orders_name", "orders", ["name"])
    op.create_index("ix_orders_external_id", "orders", ["external_id"])
    op.create_index("ix_customers_external_id", "customers", ["external_id"])
    op.create_index(
        "ix_inbox_events_failed",
        "inbox_events",
        ["last_error"],
        postgresql_where=_FAILED,
        sqlite_where=_FAILED,
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_events_failed", table_name="inbox_events")
    op.drop_index("ix_customers_external_id", table_name="customers")
    op.drop_index("ix_orders_external_id", table_name="orders")
    op.drop_index("ix_orders_name", table_name="orders")
    op.drop_index(op.f("ix_page_actions_subject"), table_name="page_actions")
    op.drop_table("page_actions")
