"""Touchpoint tables: messages planned and sent, what providers said about them, and the
satisfaction scores they collected.

A touchpoint is unique per subject + campaign + step + channel, a message event per provider
event id: replanning or a redelivered provider callback changes nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from postpurchase.store.columns import BigId, str_enum
from postpurchase.store.models.base import Base


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class TouchpointStatus(enum.StrEnum):
    """Planned work becomes exactly one of the final states; ``unknown`` is never retried.

    ``claimed`` rows whose worker died go back to the pool; ``sending`` marks the one message a
    worker is handing to a provider right now, so if that worker dies the message may have gone
    and becomes ``unknown`` instead of being sent again.
    """

    PLANNED = "planned"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNKNOWN = "unknown"


TOUCHPOINT_PLANNED = f"status = '{TouchpointStatus.PLANNED.value}'"
# The touchpoints a provider's message id finds: those it answered (migration 0021).
TOUCHPOINT_ANSWERED = "provider_message_id IS NOT NULL"


class Touchpoint(Base):
    """One message due to one customer at one time, planned from a campaign step."""

    __tablename__ = "touchpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # What the touchpoint is about: "order:<id>" or e.g. "tier:<customer id>:<change id>".
    subject_key: Mapped[str] = mapped_column(String(128))
    campaign_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(default=0)  # 0 the first message, 1.. reminders
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # No index of its own: only cancelling looks touchpoints up by order, and only planned ones
    # (``ix_touchpoints_planned_order``, migration 0022).
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    # The customer's shop, so that a shop's messages are found without a join.
    shop: Mapped[str] = mapped_column(Text, server_default="", default="")
    due_at: Mapped[datetime]
    status: Mapped[TouchpointStatus] = mapped_column(
        str_enum(TouchpointStatus, "touchpoint_status"), default=TouchpointStatus.PLANNED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)  # skip reason, cancel cause or error
    sent_at: Mapped[datetime | None]
    # Set at planning (outcomes/assignment.py) and never changed: "treatment" or "holdout"
    # (NULL on rows planned before holdouts existed: treatment), and the A/B variant's id.
    arm: Mapped[str | None] = mapped_column(String(16))
    variant: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        UniqueConstraint("subject_key", "campaign_id", "step", "channel"),
        Index("ix_touchpoints_due", "status", "due_at"),
        # What cancelling looks up: an order's or a customer's planned touchpoints (migration
        # 0018 says why these exist beside the plain indexes on the two columns).
        Index(
            "ix_touchpoints_planned_order",
            "order_id",
            postgresql_where=text(TOUCHPOINT_PLANNED),
            sqlite_where=text(TOUCHPOINT_PLANNED),
        ),
        Index(
            "ix_touchpoints_planned_customer",
            "customer_id",
            postgresql_where=text(TOUCHPOINT_PLANNED),
            sqlite_where=text(TOUCHPOINT_PLANNED),
        ),
        Index(
            "ix_touchpoints_provider_message_id",
            "provider_message_id",
            postgresql_where=text(TOUCHPOINT_ANSWERED),
            sqlite_where=text(TOUCHPOINT_ANSWERED),
        ),
    )


class MessageEvent(Base):
    """Delivery feedback from a provider (delivered, open, click, bounce, ...)."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoints.id"), index=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]]
    # When ``detail`` lost its personal fields (retention or erasure: postpurchase.privacy).
    personal_data_removed_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),)


class SurveyResponse(Base):
    """A 1-5 score sent from the survey page; one per touchpoint, the last answer sent wins."""

    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoints.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)  # written on the page with the score
    responded_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_1_to_5"),)
