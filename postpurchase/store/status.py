"""A short account of what the database holds, for ``postpurchase db status`` and run summaries."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from postpurchase.store.models import (
    Customer,
    InboxEvent,
    LoyaltyLedgerEntry,
    Order,
    RejectedWebhook,
    Touchpoint,
)


def table_counts(engine: Engine) -> list[str]:
    """One line per table: its row count, broken down by status where the table has one."""
    lines = []
    with engine.connect() as conn:
        for model in (InboxEvent, Touchpoint):
            rows = conn.execute(
                select(model.status, func.count()).group_by(model.status).order_by(model.status)
            ).all()
            total = sum(n for _, n in rows)
            detail = ", ".join(f"{status.value} {n}" for status, n in rows)
            lines.append(f"{model.__tablename__}: {total}" + (f" ({detail})" if detail else ""))
        for plain in (Customer, Order, LoyaltyLedgerEntry):
            count = conn.execute(select(func.count()).select_from(plain)).scalar_one()
            lines.append(f"{plain.__tablename__}: {count}")
        # A row counts every refused request of one kind in an hour: show both numbers.
        kinds, requests = conn.execute(
            select(func.count(), func.coalesce(func.sum(RejectedWebhook.count), 0))
        ).one()
        lines.append(f"rejected_webhooks: {kinds} ({requests} requests)")
    return lines


def inbox_watermark(session: Session) -> int:
    """The highest inbox id so far (0 when empty): it moves whenever intake stores an event."""
    return int(session.execute(select(func.coalesce(func.max(InboxEvent.id), 0))).scalar_one())
