"""Orders keep when a carrier confirmed delivery, apart from the delivery time in use.

``delivered_at`` is also set when delivery is only assumed (fulfilled ``delivery_fallback``
ago, no report: always for WooCommerce, which sends no carrier events). Messages must not
say "was delivered on ..." then; ``delivery_confirmed_at`` is set only by a delivery event.
Existing orders get none: before this revision the two cases could not be told apart, and
"should have arrived by now" is the safe wording.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("delivery_confirmed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("delivery_confirmed_at")
