"""Inbox payloads kept as the text intake wrote (PostgreSQL: ``json`` instead of ``jsonb``).

Every claim hands its rows' payloads to a drainer as text: from jsonb, PostgreSQL wrote each
document out again, 4.1 us of its CPU per payload of the planning benchmark against 0.6 us
from json, which gives back the stored text as it is (best of five reads of 96,000 payloads;
the database spends about 100 us per event of that benchmark). The row is smaller too (1,288
bytes against 1,475), and the claim writes it again. Intake's insert costs the same (the
documents are checked as JSON rather than parsed into jsonb), and the text is the compact
form intake writes, whose texts a drainer can tell are stripped from its bytes
(``postpurchase.stored_events``). Retention's edits cast to jsonb and back.

The change rewrites the table (existing payloads then read as jsonb wrote them): on a large
inbox, run it while intake is stopped; platforms deliver again what they could not.
SQLite keeps JSON as text already: nothing changes there.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 05:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE inbox_events ALTER COLUMN payload TYPE json USING payload::json")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE inbox_events ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
