"""What people did from the pages in the Airflow UI: who, what, to whom, and why.

Support and ops act on customers and on the inbox from the pages (adjust points, lift a
suppression, re-plan a customer, retry failed events). Each action is one row here, written in
the same transaction as the change it records, so the record exists exactly when the change
does. The table is append-only: nothing updates or deletes a row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from postpurchase.store.columns import BigId, Json
from postpurchase.store.models.base import Base


class PageAction(Base):
    """One action taken from a page. ``subject`` names what it was about without personal data
    (``customer:42``, ``inbox:failed``); ``detail`` holds what the action changed."""

    __tablename__ = "page_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    acted_at: Mapped[datetime]
    user_name: Mapped[str] = mapped_column(String(255))  # Airflow's user name
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255), index=True)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


def record_action(
    session: Session,
    *,
    user_name: str,
    action: str,
    subject: str,
    reason: str,
    detail: dict[str, Any],
    now: datetime,
) -> PageAction:
    """Add the record of one action to the caller's transaction."""
    row = PageAction(
        acted_at=now,
        user_name=user_name,
        action=action,
        subject=subject,
        reason=reason,
        detail=detail,
    )
    session.add(row)
    session.flush()
    return row


def actions_on(session: Session, subject: str, *, limit: int = 50) -> list[PageAction]:
    """The newest actions about ``subject``, newest first."""
    return list(
        session.scalars(
            select(PageAction)
            .where(PageAction.subject == subject)
            .order_by(PageAction.id.desc())
            .limit(limit)
        )
    )
