"""The few SQL spellings that differ between SQLite and PostgreSQL in the outcome queries.

Time arithmetic is done on epoch milliseconds (rounded, so SQLite's julianday float lands on
the exact millisecond): window edges then compare exactly on both databases.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def ms(self, column: str) -> str:
        """``column`` (a timestamp) as whole epoch milliseconds."""
        if self.postgres:
            # date_part is double precision; extract() gives numeric, several times slower
            return f"round(date_part('epoch', {column}) * 1000)"
        return f"round((julianday({column}) - 2440587.5) * 86400000.0)"

    def day(self, column: str) -> str:
        """The UTC calendar day of ``column`` as YYYY-MM-DD."""
        if self.postgres:
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"substr({column}, 1, 10)"

    def text_of(self, column: str, key: str) -> str:
        """A JSON object's text value (keys here are fixed identifiers, never input)."""
        if self.postgres:
            return f"({column} ->> '{key}')"
        return f"json_extract({column}, '$.{key}')"

    def true(self, condition: str) -> str:
        """A boolean column's value from a condition (SQLite keeps 0 and 1)."""
        return f"({condition})" if self.postgres else f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"
