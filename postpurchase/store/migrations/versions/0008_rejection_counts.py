"""Refused requests are counted per kind and hour instead of one row each.

One row per refused request let anyone fill the table (and take SQLite's write lock) with
unsigned posts, and let a flood push real signature failures out under the row cap. A row now
stands for all requests of one route, status and kind of reason within one hour: ``count``
and ``last_seen_at`` grow, ``samples`` keeps the first few. Existing rows keep their meaning
(count 1, no key); the unique key leaves them alone, as NULLs never collide.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_UNIQUE = "uq_rejected_webhooks_reason_key_bucket_start"


def upgrade() -> None:
    with op.batch_alter_table("rejected_webhooks") as batch:
        batch.add_column(sa.Column("reason_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("count", sa.BigInteger(), server_default="1", nullable=False))
        batch.add_column(
            sa.Column("samples", _JSON, server_default=sa.text("'[]'"), nullable=False)
        )
        batch.create_unique_constraint(_UNIQUE, ["reason_key", "bucket_start"])


def downgrade() -> None:
    with op.batch_alter_table("rejected_webhooks") as batch:
        batch.drop_constraint(_UNIQUE, type_="unique")
        for column in ("samples", "count", "last_seen_at", "bucket_start", "reason_key"):
            batch.drop_column(column)
