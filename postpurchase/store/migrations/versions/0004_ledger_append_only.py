"""The points ledger refuses UPDATE and DELETE in the database itself.

A balance is the sum of the ledger's rows; corrections are new rows (reversal, adjustment),
never edits. The rule holds for every writer, including a hand-typed SQL session.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 14:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSTGRES_UP = (
    """
    CREATE FUNCTION loyalty_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'loyalty_ledger is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation',
                  HINT = 'correct a balance with a new row (postpurchase loyalty adjust)';
    END
    $$
    """,
    """
    CREATE TRIGGER loyalty_ledger_append_only BEFORE UPDATE OR DELETE ON loyalty_ledger
    FOR EACH ROW EXECUTE FUNCTION loyalty_ledger_append_only()
    """,
)
_POSTGRES_DOWN = (
    "DROP TRIGGER loyalty_ledger_append_only ON loyalty_ledger",
    "DROP FUNCTION loyalty_ledger_append_only()",
)
_SQLITE_UP = tuple(
    f"""
    CREATE TRIGGER loyalty_ledger_no_{operation.lower()} BEFORE {operation} ON loyalty_ledger
    BEGIN SELECT RAISE(ABORT, 'loyalty_ledger is append-only: {operation} refused'); END
    """
    for operation in ("UPDATE", "DELETE")
)
_SQLITE_DOWN = (
    "DROP TRIGGER loyalty_ledger_no_update",
    "DROP TRIGGER loyalty_ledger_no_delete",
)


def _statements(postgres: Sequence[str], sqlite: Sequence[str]) -> Sequence[str]:
    return postgres if op.get_bind().dialect.name == "postgresql" else sqlite


def upgrade() -> None:
    for statement in _statements(_POSTGRES_UP, _SQLITE_UP):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(_POSTGRES_DOWN, _SQLITE_DOWN):
        op.execute(statement)
