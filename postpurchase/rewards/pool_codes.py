"""Code pools: codes a shop made elsewhere, read from CSV, imported, handed out one per
redemption, and counted.

A shop whose platform cannot create codes through an API (or that prefers its own) imports a
pool per reward; ``reserve`` claims one in the redemption's own transaction.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.exceptions import InvalidInput
from postpurchase.store.models import PoolCode
from postpurchase.store.statements import insert_ignoring_conflicts


def read_codes(path: Path) -> list[str]:
    """The codes in ``path``: the ``code`` column when a header names one, else the first."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and row[0].strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{path}: cannot read the codes: {exc}") from None
    if not rows:
        raise InvalidInput(f"{path}: no codes in the file")
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("code") if "code" in header else 0
    body = rows[1:] if "code" in header else rows
    return [row[column].strip() for row in body if len(row) > column and row[column].strip()]


def import_pool_codes(session: Session, reward: str, codes: list[str]) -> int:
    """Add codes to ``reward``'s pool; codes already imported are skipped. The count added."""
    cleaned = sorted({c.strip() for c in codes if c.strip()})
    too_long = [c for c in cleaned if len(c) > 64]
    if too_long:
        raise InvalidInput(f"codes longer than 64 characters: {', '.join(too_long[:3])}")
    rows = [{"reward": reward, "code": code} for code in cleaned]
    return insert_ignoring_conflicts(session, PoolCode, rows) if rows else 0


def free_pool_codes(session: Session, reward: str) -> int:
    """How many of ``reward``'s pool codes are still to be handed out."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(PoolCode)
            .where(PoolCode.reward == reward, PoolCode.redemption_id.is_(None))
        )
        or 0
    )


def claim_pool_code(session: Session, reward: str) -> PoolCode | None:
    """The next free code of ``reward``'s pool (None: the pool is empty), in the caller's
    transaction."""
    query = (
        select(PoolCode)
        .where(PoolCode.reward == reward, PoolCode.redemption_id.is_(None))
        .order_by(PoolCode.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Other customers' redemptions claim from the same pool at the same time.
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()
