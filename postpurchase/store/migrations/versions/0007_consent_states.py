"""Consent in three states (granted, denied, unknown) with source and time, and its audit trail.

Customers had three booleans defaulting to False, so "the platform never said" was stored as
"no". They become, per purpose, a state, the source that set it and when. Existing rows
convert as follows:

- True: ``granted`` (source ``migration``, dated by the customer's platform ``updated_at``);
- False with evidence of a denial: ``denied``. Evidence is an active suppression the customer
  caused: for email an unsubscribe, a group unsubscribe or a spam report on their address; for
  SMS (both purposes) a STOP from their number. Dated by the suppression;
- any other False: ``unknown``. False was also what every customer got when the platform said
  nothing (WooCommerce, Shopify 2025-01+), so it is no evidence of a "no".

Each converted granted/denied is written to ``consent_changes`` (from ``unknown``), so the
trail starts with what the migration assumed. ``consent_changes`` is append-only in the
database, like the loyalty ledger.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = ("granted", "denied", "unknown")
_PURPOSES = ("email_marketing", "sms_marketing", "sms")
# old boolean column -> purpose
_OLD = {
    "email_marketing_consent": "email_marketing",
    "sms_marketing_consent": "sms_marketing",
    "sms_consent": "sms",
}
_DENIAL_EVIDENCE = {
    "email_marketing": ("email", ("unsubscribe", "group_unsubscribe", "spamreport")),
    "sms_marketing": ("sms", ("stop",)),
    "sms": ("sms", ("stop",)),
}

_POSTGRES_TRIGGER = (
    """
    CREATE FUNCTION consent_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'consent_changes is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation',
                  HINT = 'record a correction as a new consent change';
    END
    $$
    """,
    """
    CREATE TRIGGER consent_changes_append_only BEFORE UPDATE OR DELETE ON consent_changes
    FOR EACH ROW EXECUTE FUNCTION consent_changes_append_only()
    """,
)
_SQLITE_TRIGGER = tuple(
    f"""
    CREATE TRIGGER consent_changes_no_{operation.lower()} BEFORE {operation} ON consent_changes
    BEGIN SELECT RAISE(ABORT, 'consent_changes is append-only: {operation} refused'); END
    """
    for operation in ("UPDATE", "DELETE")
)


def _state_enum(name: str) -> sa.Enum:
    return sa.Enum(*_STATES, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for purpose in _PURPOSES:
        op.add_column(
            "customers",
            sa.Column(
                f"{purpose}_consent_state",
                sa.String(length=32),
                server_default="unknown",
                nullable=False,
            ),
        )
        op.add_column(
            "customers", sa.Column(f"{purpose}_consent_source", sa.String(32), nullable=True)
        )
        op.add_column(
            "customers",
            sa.Column(f"{purpose}_consent_at", sa.DateTime(timezone=True), nullable=True),
        )
        if postgres:
            # SQLite cannot add a CHECK to an existing table without rebuilding it (and the
            # rebuild would trip the foreign keys of orders); the model's enum still refuses
            # other values on every write through the engine.
            op.create_check_constraint(
                op.f(f"ck_customers_{purpose}_consent_state"),
                "customers",
                sa.column(f"{purpose}_consent_state").in_(_STATES),
            )
    op.create_table(
        "consent_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "purpose",
            sa.Enum(
                *_PURPOSES,
                name="consent_purpose",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("from_state", _state_enum("consent_from_state"), nullable=False),
        sa.Column("to_state", _state_enum("consent_to_state"), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_consent_changes_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_changes")),
    )
    op.create_index(
        op.f("ix_consent_changes_customer_id"), "consent_changes", ["customer_id"], unique=False
    )
    _convert()
    for old in _OLD:
        op.drop_column("customers", old)
    for statement in _POSTGRES_TRIGGER if postgres else _SQLITE_TRIGGER:
        op.execute(statement)


def _convert() -> None:
    """Booleans to states, set-based (see the module docstring for the rules)."""
    customers = sa.table(
        "customers",
        sa.column("id"),
        sa.column("email"),
        sa.column("phone"),
        sa.column("source_updated_at"),
        sa.column("created_at"),
        *(sa.column(old) for old in _OLD),
        *(
            sa.column(f"{p}_consent_{part}")
            for p in _PURPOSES
            for part in ("state", "source", "at")
        ),
    )
    suppressions = sa.table(
        "suppressions",
        sa.column("channel"),
        sa.column("address"),
        sa.column("reason"),
        sa.column("created_at"),
        sa.column("lifted_at"),
    )
    changes = sa.table(
        "consent_changes",
        *(
            sa.column(name)
            for name in (
                "customer_id",
                "purpose",
                "from_state",
                "to_state",
                "source",
                "reference",
                "occurred_at",
            )
        ),
    )
    c = customers.c
    for old, purpose in _OLD.items():
        state, source, at = (c[f"{purpose}_consent_{part}"] for part in ("state", "source", "at"))
        op.execute(
            customers.update()
            .where(c[old].is_(sa.true()))
            .values({state: "granted", source: "migration", at: c.source_updated_at})
        )
        channel, reasons = _DENIAL_EVIDENCE[purpose]
        address = sa.func.lower(c.email) if channel == "email" else c.phone
        evidence = (
            sa.select(suppressions.c.created_at)
            .where(
                suppressions.c.channel == channel,
                suppressions.c.address == address,
                suppressions.c.reason.in_(reasons),
                suppressions.c.lifted_at.is_(None),
            )
            .correlate(customers)
        )
        since = evidence.with_only_columns(sa.func.min(suppressions.c.created_at))
        op.execute(
            customers.update()
            .where(c[old].is_(sa.false()), evidence.exists())
            .values({state: "denied", source: "migration", at: since.scalar_subquery()})
        )
        op.execute(
            changes.insert().from_select(
                [col.name for col in changes.c],
                sa.select(
                    c.id,
                    sa.literal(purpose),
                    sa.literal("unknown"),
                    state,
                    sa.literal("migration"),
                    sa.literal(f"revision 0007 from {old}"),
                    sa.func.coalesce(at, c.created_at),
                ).where(source == "migration"),
            )
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER consent_changes_append_only ON consent_changes")
        op.execute("DROP FUNCTION consent_changes_append_only()")
    else:
        op.execute("DROP TRIGGER consent_changes_no_update")
        op.execute("DROP TRIGGER consent_changes_no_delete")
    for old, purpose in _OLD.items():
        # granted is the only state the booleans could say: denied and unknown both were False
        op.add_column(
            "customers", sa.Column(old, sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        customers = sa.table("customers", sa.column(old), sa.column(f"{purpose}_consent_state"))
        op.execute(
            customers.update().values(
                {
                    old: sa.case(
                        (customers.c[f"{purpose}_consent_state"] == "granted", sa.true()),
                        else_=sa.false(),
                    )
                }
            )
        )
    op.drop_index(op.f("ix_consent_changes_customer_id"), table_name="consent_changes")
    op.drop_table("consent_changes")
    for purpose in _PURPOSES:
        if postgres:
            op.drop_constraint(
                op.f(f"ck_customers_{purpose}_consent_state"), "customers", type_="check"
            )
        for part in ("state", "source", "at"):
            op.drop_column("customers", f"{purpose}_consent_{part}")
