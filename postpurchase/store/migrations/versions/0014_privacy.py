"""Privacy: requests to export or erase a customer's data (and their fulfilment), and when an
inbox payload or a provider event's detail lost its personal fields (retention, erasure).

The partial index on inbox rows still holding personal data keeps the retention pass from
walking rows it already purged.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIME = sa.DateTime(timezone=True)
_INDEX = "ix_inbox_events_personal"
_PERSONAL = sa.text("personal_data_removed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("shop", sa.String(length=255), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("inbox_event_id", sa.BigInteger(), nullable=True),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("fulfilled_at", _TIME, nullable=True),
        sa.Column("result", _JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
        sa.UniqueConstraint("inbox_event_id", name=op.f("uq_privacy_requests_inbox_event_id")),
    )
    with op.batch_alter_table("inbox_events") as batch:
        batch.add_column(sa.Column("personal_data_removed_at", _TIME, nullable=True))
    with op.batch_alter_table("message_events") as batch:
        batch.add_column(sa.Column("personal_data_removed_at", _TIME, nullable=True))
    op.create_index(
        _INDEX, "inbox_events", ["id"], postgresql_where=_PERSONAL, sqlite_where=_PERSONAL
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="inbox_events")
    with op.batch_alter_table("message_events") as batch:
        batch.drop_column("personal_data_removed_at")
    with op.batch_alter_table("inbox_events") as batch:
        batch.drop_column("personal_data_removed_at")
    op.drop_table("privacy_requests")
