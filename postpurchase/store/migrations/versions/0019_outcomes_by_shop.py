"""Outcomes by shop: ``touchpoint_outcomes`` and ``campaign_days`` carry the touchpoint's shop,
so a report can show one shop's funnel (``postpurchase report --shop``).

Rows already there are the default shop's (''); the next refresh over their days rebuilds
them with their shops.

Revision ID: 0019
Revises: 0015
Create Date: 2026-12-02 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DAY_KEY = ["day", "campaign_id", "variant", "arm"]


def _shop() -> sa.Column[str]:
    return sa.Column("shop", sa.Text(), server_default="", nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("touchpoint_outcomes") as batch:
        batch.add_column(_shop())
    with op.batch_alter_table("campaign_days") as batch:
        batch.add_column(_shop())
        batch.drop_constraint("pk_campaign_days", type_="primary")
        batch.create_primary_key(
            "pk_campaign_days", ["day", "campaign_id", "shop", "variant", "arm"]
        )


def downgrade() -> None:
    # derived rows: the listed shops' days go (a refresh rebuilds them), the default shop's stay
    op.execute("DELETE FROM campaign_days WHERE shop <> ''")
    with op.batch_alter_table("campaign_days") as batch:
        batch.drop_constraint("pk_campaign_days", type_="primary")
        batch.create_primary_key("pk_campaign_days", _DAY_KEY)
        batch.drop_column("shop")
    with op.batch_alter_table("touchpoint_outcomes") as batch:
        batch.drop_column("shop")
