"""Reviews collected on the shop's review page, NPS answers, comments on the 1-5 check-in,
and the notifications that tell the support team about a negative answer.

Reviews: one row per order and product, or per review service and its review id; moderated
before anything is published. NPS: one answer per touchpoint. Notifications: one row per
answer and way of telling (a unique key), so none is ever sent twice.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "product_reviews",
        sa.Column("id", big_id, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("shop", sa.String(length=255), nullable=True),
        sa.Column("customer_id", big_id, nullable=True),
        sa.Column("order_id", big_id, nullable=True),
        sa.Column("touchpoint_id", big_id, nullable=True),
        sa.Column("product_key", sa.String(length=255), nullable=False),
        sa.Column("product_title", sa.Text(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("verified_buyer", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "published",
                "rejected",
                name="review_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("held_because", sa.Text(), nullable=True),
        sa.Column("moderated_by", sa.String(length=128), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moderated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_product_reviews_rating_1_to_5")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_product_reviews_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_product_reviews_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["touchpoint_id"],
            ["touchpoints.id"],
            name=op.f("fk_product_reviews_touchpoint_id_touchpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_reviews")),
        sa.UniqueConstraint(
            "order_id", "product_key", name=op.f("uq_product_reviews_order_id_product_key")
        ),
        sa.UniqueConstraint(
            "source", "external_id", name=op.f("uq_product_reviews_source_external_id")
        ),
    )
    op.create_index(op.f("ix_product_reviews_customer_id"), "product_reviews", ["customer_id"])
    op.create_index(op.f("ix_product_reviews_order_id"), "product_reviews", ["order_id"])
    op.create_index("ix_product_reviews_published", "product_reviews", ["status", "product_key"])

    op.create_table(
        "nps_responses",
        sa.Column("id", big_id, nullable=False),
        sa.Column("touchpoint_id", big_id, nullable=False),
        sa.Column("customer_id", big_id, nullable=False),
        sa.Column("order_id", big_id, nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score BETWEEN 0 AND 10", name=op.f("ck_nps_responses_score_0_to_10")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_nps_responses_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_nps_responses_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["touchpoint_id"],
            ["touchpoints.id"],
            name=op.f("fk_nps_responses_touchpoint_id_touchpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nps_responses")),
        sa.UniqueConstraint("touchpoint_id", name=op.f("uq_nps_responses_touchpoint_id")),
    )
    op.create_index(op.f("ix_nps_responses_customer_id"), "nps_responses", ["customer_id"])
    op.create_table(
        "support_notifications",
        sa.Column("id", big_id, nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sending",
                "sent",
                "failed",
                name="notification_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_support_notifications_key")),
    )
    op.create_index(
        "ix_support_notifications_due", "support_notifications", ["status", "next_attempt_at"]
    )
    with op.batch_alter_table("survey_responses") as batch:
        batch.add_column(sa.Column("comment", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_column("comment")
    op.drop_table("support_notifications")
    op.drop_table("nps_responses")
    op.drop_table("product_reviews")
