"""Indexes whose use does not depend on table statistics: the inbox claim and the cancels.

A fresh table has no statistics until it is analysed (autovacuum may run late, or never), and
PostgreSQL then guesses that an equality on a column matches 0.5% of rows. Two statements got
plans that grew with the backlog:

- The claim (``status = 'pending' AND id > last ORDER BY id LIMIT n``), guessing few pending
  rows, fetched every pending row above the last claim and sorted them, on each claim (90-180
  ms per 1,000-row claim on a large backlog). It now walks the partial index of its rows in
  id order and stops at its limit (the claim turns sorting off for that one statement,
  postpurchase.store.claims). The index holds pending rows only, the claim's exact
  condition; a crashed claimant's rows (status ``claimed``) get an index of their own, on
  their lease, for a drain's first claim.
- Cancelling (an order's or a customer's planned touchpoints) walked every planned touchpoint
  through ``ix_touchpoints_due``, which looked as selective as the plain index on the order or
  customer. Partial indexes on the two columns holding planned rows only are cheaper in every
  estimate, so each key is looked up on its own.

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLAIMABLE = "ix_inbox_events_claimable"
_PENDING = sa.text("status = 'pending'")
_OLD_CLAIMABLE = sa.text("status IN ('pending', 'claimed')")
_CLAIMED = sa.text("status = 'claimed'")
_PLANNED = sa.text("status = 'planned'")


def _index(name: str, table: str, column: str, where: sa.TextClause) -> None:
    op.create_index(name, table, [column], postgresql_where=where, sqlite_where=where)


def upgrade() -> None:
    op.drop_index(_CLAIMABLE, table_name="inbox_events")
    _index(_CLAIMABLE, "inbox_events", "id", _PENDING)
    _index("ix_inbox_events_claimed", "inbox_events", "lease_until", _CLAIMED)
    _index("ix_touchpoints_planned_order", "touchpoints", "order_id", _PLANNED)
    _index("ix_touchpoints_planned_customer", "touchpoints", "customer_id", _PLANNED)


def downgrade() -> None:
    op.drop_index("ix_touchpoints_planned_customer", table_name="touchpoints")
    op.drop_index("ix_touchpoints_planned_order", table_name="touchpoints")
    op.drop_index("ix_inbox_events_claimed", table_name="inbox_events")
    op.drop_index(_CLAIMABLE, table_name="inbox_events")
    _index(_CLAIMABLE, "inbox_events", "id", _OLD_CLAIMABLE)
