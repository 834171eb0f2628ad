"""Outcomes: each touchpoint's arm and variant, campaign pauses, and the aggregate tables.

``touchpoints.arm`` and ``touchpoints.variant`` are set when a touchpoint is planned and never
change. The other tables are rebuilt by the measure_outcomes DAG (see postpurchase/outcomes).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MONEY = sa.Numeric(precision=18, scale=4)
_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _counts(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    op.add_column("touchpoints", sa.Column("arm", sa.String(length=16), nullable=True))
    op.add_column("touchpoints", sa.Column("variant", sa.String(length=32), nullable=True))
    op.create_table(
        "campaign_pauses",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("paused_at", _TIME, nullable=False),
        sa.Column("resumed_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_pauses")),
    )
    op.create_table(
        "touchpoint_outcomes",
        sa.Column("touchpoint_id", _ID, autoincrement=False, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("moment", _TIME, nullable=False),
        sa.Column("due_at", _TIME, nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("opened", sa.Boolean(), nullable=False),
        sa.Column("first_click_at", _TIME, nullable=True),
        sa.Column("scanner_clicks", sa.Integer(), nullable=False),
        sa.Column("bounced", sa.Boolean(), nullable=False),
        sa.Column("complained", sa.Boolean(), nullable=False),
        sa.Column("unsubscribed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("touchpoint_id", name=op.f("pk_touchpoint_outcomes")),
    )
    op.create_index(
        "ix_touchpoint_outcomes_customer_click",
        "touchpoint_outcomes",
        ["customer_id", "first_click_at"],
    )
    op.create_table(
        "attributed_orders",
        sa.Column("order_id", _ID, autoincrement=False, nullable=False),
        sa.Column("touchpoint_id", _ID, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("paid_at", _TIME, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("revenue", _MONEY, nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_attributed_orders")),
    )
    op.create_index(
        op.f("ix_attributed_orders_touchpoint_id"), "attributed_orders", ["touchpoint_id"]
    )
    op.create_index(op.f("ix_attributed_orders_paid_at"), "attributed_orders", ["paid_at"])
    op.create_table(
        "campaign_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        *_counts(
            "planned",
            "held_out",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "scanner_clicks",
            "bounced",
            "complaints",
            "unsubscribed",
            "converted",
        ),
        sa.Column("revenue", _MONEY, nullable=False),
        *_counts("recipients", "buyers"),
        sa.Column("buyer_revenue", _MONEY, nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "campaign_id", "variant", "arm", name=op.f("pk_campaign_days")
        ),
    )
    op.create_table(
        "outcome_snapshots",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("refreshed_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_outcome_snapshots")),
    )


def downgrade() -> None:
    for table in ("outcome_snapshots", "campaign_days", "attributed_orders"):
        op.drop_table(table)
    op.drop_index("ix_touchpoint_outcomes_customer_click", table_name="touchpoint_outcomes")
    op.drop_table("touchpoint_outcomes")
    op.drop_table("campaign_pauses")
    op.drop_column("touchpoints", "variant")
    op.drop_column("touchpoints", "arm")
