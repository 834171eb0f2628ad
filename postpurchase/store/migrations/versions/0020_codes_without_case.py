"""Codes looked up without case: indexes on ``upper(code)`` of redemptions and referral codes.

A drain batch looks the codes its orders carry up among both tables at once
(``upper(code) = ANY(...)``, postpurchase.rewards): the unique index on ``code`` cannot serve
a comparison without case, and each batch scanned both tables, which grow with the shop.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("redemptions", "referral_codes")


def upgrade() -> None:
    for table in _TABLES:
        op.create_index(f"ix_{table}_upper_code", table, [sa.text("upper(code)")])


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_upper_code", table_name=table)
