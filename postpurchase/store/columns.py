"""How values are stored: the column types (UTC timestamps, money, JSON, big ids), enums
kept as checked strings."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Integer,
    Numeric,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# SQLite only auto-increments INTEGER PRIMARY KEY, not BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


Json = JSON().with_variant(JSONB(), "postgresql")
# JSON kept as the text it was written in (PostgreSQL's json; SQLite keeps text anyway): for
# documents written once and read back whole, such as inbox payloads. jsonb parsed each on
# the way in and wrote it out again on the way back, 4 us of the database's CPU for each
# payload a drainer claims (0.6 from json); its functions still apply, through a cast.
JsonText = JSON()


# Enough for any ISO 4217 minor unit (up to 4 decimals) and totals far beyond a shop's order.
Money = Numeric(18, 4, asdecimal=True)


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK: adding a value is a one-line migration everywhere.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, so values are normalised to UTC before they are written and get UTC
    attached when read. A naive datetime is refused: its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store needs timezone-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
