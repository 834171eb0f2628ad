"""Backend-specific statements the processing steps need on both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], *, chunk: int = 1000
) -> int:
    """Insert ``rows``; rows that hit a unique constraint are skipped. Returns rows inserted.

    This is how every planning step stays idempotent: the unique key says "already done".
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    inserted = 0
    for start in range(0, len(rows), chunk):
        stmt: Insert = module.insert(model).on_conflict_do_nothing()
        result = session.execute(stmt.returning(model.id), list(rows[start : start + chunk]))
        inserted += len(result.all())
    return inserted
