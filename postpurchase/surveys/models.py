"""Tables of survey answers and support notifications (share ``store.models``' metadata)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postpurchase.store.columns import BigId, str_enum
from postpurchase.store.models import Base


class NpsResponse(Base):
    """A 0-10 answer to "how likely are you to recommend us" and its comment; one per
    touchpoint, the last answer sent wins."""

    __tablename__ = "nps_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoints.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("score BETWEEN 0 AND 10", name="score_0_to_10"),)


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender until lease_until
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt (kept, with the error)


class SupportNotification(Base):
    """One message to the support team about one negative answer, per way of telling them.

    ``key`` is unique ("<channel>:<answer>", e.g. "webhook:nps:42"): a second negative event
    for the same answer, or a retried task, finds the row and sends nothing more.
    """

    __tablename__ = "support_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # email, webhook
    payload: Mapped[dict[str, Any]]
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus, "notification_status"), default=NotificationStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_support_notifications_due", "status", "next_attempt_at"),)
