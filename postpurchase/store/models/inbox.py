"""Inbox tables: what arrives at the door, kept before it is acknowledged.

An inbox row per delivery (``dedupe_key``) makes a redelivered webhook a no-op; refused
requests are counted per kind and hour in ``rejected_webhooks``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from postpurchase.store.columns import BigId, Json, JsonText, str_enum
from postpurchase.store.models.base import Base


class ClaimStatus(enum.StrEnum):
    """Life of a claimable row (inbox event, touchpoint) while work is done on it."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"
    IGNORED = "ignored"


# The inbox rows a claim takes, as the claim index's condition (SQL).
INBOX_CLAIMABLE = f"status = '{ClaimStatus.PENDING.value}'"
# Rows a drainer of an earlier version left claimed (a drain takes them back when it starts,
# once their lease has run out; claims no longer leave rows claimed: store/inbox_claims.py).
INBOX_CLAIMED = f"status = '{ClaimStatus.CLAIMED.value}'"
# The inbox rows whose payload may still hold personal fields (retention's index condition).
INBOX_PERSONAL = "personal_data_removed_at IS NULL"
# The inbox rows processing gave up on (the health page's index condition).
INBOX_FAILED = "status = 'failed'"


class InboxEvent(Base):
    """A webhook or internal event, stored before it is acknowledged and processed later."""

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))  # shopify, woocommerce, generic, internal, ...
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))  # canonical, e.g. order.paid
    topic: Mapped[str | None] = mapped_column(String(128))  # the platform's own name
    shop: Mapped[str | None] = mapped_column(String(255))
    subject_id: Mapped[str | None] = mapped_column(String(64))  # the platform's order/customer id
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    payload: Mapped[dict[str, Any]] = mapped_column(JsonText)  # as intake wrote it
    status: Mapped[ClaimStatus] = mapped_column(
        str_enum(ClaimStatus, "claim_status"), default=ClaimStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # When the payload lost its personal fields (retention or erasure: postpurchase.privacy).
    personal_data_removed_at: Mapped[datetime | None]

    # Only rows still to be processed (migrations 0005 and 0018 say why).
    __table_args__ = (
        Index(
            "ix_inbox_events_claimable",
            "id",
            postgresql_where=text(INBOX_CLAIMABLE),
            sqlite_where=text(INBOX_CLAIMABLE),
        ),
        Index(
            "ix_inbox_events_claimed",
            "lease_until",
            postgresql_where=text(INBOX_CLAIMED),
            sqlite_where=text(INBOX_CLAIMED),
        ),
        # only the rows whose payload may still hold personal data: what retention walks
        Index(
            "ix_inbox_events_personal",
            "id",
            postgresql_where=text(INBOX_PERSONAL),
            sqlite_where=text(INBOX_PERSONAL),
        ),
        # only failed rows, by reason: the health page groups them and retries one reason
        Index(
            "ix_inbox_events_failed",
            "last_error",
            postgresql_where=text(INBOX_FAILED),
            sqlite_where=text(INBOX_FAILED),
        ),
    )


class RejectedWebhook(Base):
    """Requests refused at the door, counted per route, status and kind of reason per hour.

    ``reason``, ``headers`` and ``body_excerpt`` are those of the first request of the kind in
    that hour; ``samples`` keeps the first few (safe headers, start of the body) and ``count``
    how many there were, up to ``last_seen_at``. Rows from before counting (migration 0008)
    have no ``reason_key`` and count 1.
    """

    __tablename__ = "rejected_webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    route: Mapped[str] = mapped_column(String(128))
    status_code: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]]
    body_excerpt: Mapped[str] = mapped_column(Text, default="")
    reason_key: Mapped[str | None] = mapped_column(String(64))
    bucket_start: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    count: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    samples: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)

    __table_args__ = (UniqueConstraint("reason_key", "bucket_start"),)
