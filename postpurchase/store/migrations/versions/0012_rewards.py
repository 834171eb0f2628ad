"""Rewards: redemptions (a ledger debit and a discount code), a code pool, new ledger kinds,
customers' birthdays (birthday points), and referrals with their codes and the address digests
that tell a self-referral.

The ledger's kind CHECK grows ``redemption``, ``redemption_refund`` and ``bonus``. PostgreSQL
swaps the constraint in place. SQLite cannot alter a CHECK, so the table is rebuilt from its
own stored definition with only the kind list changed; its rows, indexes and append-only
triggers are carried over (the triggers are created again after the copy, since the copy
itself is an INSERT into the new table and the old table's triggers go with it).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KINDS = ("award", "reversal", "expiry", "adjustment")
_NEW_KINDS = (*_OLD_KINDS, "redemption", "redemption_refund", "bonus")
_CHECK = "ck_loyalty_ledger_ledger_kind"
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _in_list(kinds: Sequence[str]) -> str:
    return ", ".join(f"'{k}'" for k in kinds)


def _set_ledger_kinds(kinds: Sequence[str], previous: Sequence[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE loyalty_ledger DROP CONSTRAINT {_CHECK}")
        check = f"CHECK (kind IN ({_in_list(kinds)}))"
        op.execute(f"ALTER TABLE loyalty_ledger ADD CONSTRAINT {_CHECK} {check}")
        return
    rows = bind.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'loyalty_ledger' "
        "AND sql IS NOT NULL"
    ).all()
    table_sql = next(sql for kind, _, sql in rows if kind == "table")
    old_check = f"kind IN ({_in_list(previous)})"
    if old_check not in table_sql:
        raise RuntimeError(f"loyalty_ledger's kind CHECK is not {old_check!r}: {table_sql}")
    new_sql = table_sql.replace(old_check, f"kind IN ({_in_list(kinds)})").replace(
        "CREATE TABLE loyalty_ledger", "CREATE TABLE loyalty_ledger_new", 1
    )
    others = [sql for kind, _, sql in rows if kind != "table"]
    op.execute(new_sql)
    op.execute("INSERT INTO loyalty_ledger_new SELECT * FROM loyalty_ledger")
    op.execute("DROP TABLE loyalty_ledger")  # its indexes and triggers go with it
    op.execute("ALTER TABLE loyalty_ledger_new RENAME TO loyalty_ledger")
    for sql in others:
        op.execute(sql)


def upgrade() -> None:
    _set_ledger_kinds(_NEW_KINDS, _OLD_KINDS)
    op.create_table(
        "redemptions",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("reward", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("platform_ref", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "issued",
                "used",
                "expired",
                "refunded",
                name="redemption_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("order_id", _Id, nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_redemptions_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_redemptions_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("code", name=op.f("uq_redemptions_code")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_redemptions_idempotency_key")),
    )
    op.create_index(op.f("ix_redemptions_customer_id"), "redemptions", ["customer_id"])
    op.create_index("ix_redemptions_status_expires", "redemptions", ["status", "expires_at"])
    op.create_table(
        "reward_pool_codes",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("reward", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("redemption_id", _Id, nullable=True),
        sa.Column(
            "imported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["redemption_id"],
            ["redemptions.id"],
            name=op.f("fk_reward_pool_codes_redemption_id_redemptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_pool_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_reward_pool_codes_code")),
        sa.UniqueConstraint("redemption_id", name=op.f("uq_reward_pool_codes_redemption_id")),
    )
    op.create_index("ix_reward_pool_codes_free", "reward_pool_codes", ["reward", "redemption_id"])
    op.create_table(
        "customer_birthdays",
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "month BETWEEN 1 AND 12 AND day BETWEEN 1 AND 31",
            name=op.f("ck_customer_birthdays_valid_date"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_birthdays_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_birthdays")),
    )
    op.create_index("ix_customer_birthdays_month_day", "customer_birthdays", ["month", "day"])
    op.create_table(
        "referral_codes",
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_referral_codes_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_referral_codes_code")),
    )
    op.create_table(
        "referrals",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("referred_customer_id", _Id, nullable=False),
        sa.Column("referrer_customer_id", _Id, nullable=False),
        sa.Column("order_id", _Id, nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "rewarded",
                "refused",
                "reversed",
                name="referral_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["referred_customer_id"],
            ["customers.id"],
            name=op.f("fk_referrals_referred_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["referrer_customer_id"],
            ["customers.id"],
            name=op.f("fk_referrals_referrer_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_referrals_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("referred_customer_id", name=op.f("uq_referrals_referred_customer_id")),
    )
    op.create_index(
        op.f("ix_referrals_referrer_customer_id"), "referrals", ["referrer_customer_id"]
    )
    op.create_index(op.f("ix_referrals_order_id"), "referrals", ["order_id"])
    op.create_table(
        "customer_address_keys",
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("address_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_address_keys_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint(
            "customer_id", "address_key", name=op.f("pk_customer_address_keys")
        ),
    )
    op.create_index(
        op.f("ix_customer_address_keys_address_key"), "customer_address_keys", ["address_key"]
    )


def downgrade() -> None:
    op.drop_table("customer_address_keys")
    op.drop_table("referrals")
    op.drop_table("referral_codes")
    op.drop_table("customer_birthdays")
    op.drop_table("reward_pool_codes")
    op.drop_table("redemptions")
    _set_ledger_kinds(_OLD_KINDS, _NEW_KINDS)
