"""Retention: processed inbox payloads and provider event details lose their personal fields
``POSTPURCHASE_PAYLOAD_RETENTION_DAYS`` after they arrived.

Set-based: each batch is one UPDATE over the oldest rows still holding personal data (found
through a partial index that shrinks as rows are purged), in its own short transaction, so
intake's inserts never wait long behind it. Rows still to be processed, and compliance
requests not yet fulfilled, are left alone. Running it twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, not_, or_, select, update

from postpurchase.privacy.personal import (
    DETAIL_KEYS,
    PAYLOAD_LIST_KEYS,
    PAYLOAD_PATHS,
    without_list_keys,
    without_paths,
)
from postpurchase.store.database import SessionFactory, engine_of, transaction
from postpurchase.store.models import ClaimStatus, InboxEvent, MessageEvent

BATCH_SIZE = 5_000
PRIVACY_EVENTS = "privacy.%"  # postpurchase.privacy.requests.EVENT_PREFIX


@dataclass(frozen=True)
class Purged:
    inbox_payloads: int
    message_events: int


def _inbox_due(cutoff: datetime) -> list[object]:
    return [
        InboxEvent.personal_data_removed_at.is_(None),
        InboxEvent.received_at < cutoff,
        or_(
            InboxEvent.status.in_([ClaimStatus.DONE, ClaimStatus.FAILED]),
            and_(
                InboxEvent.status == ClaimStatus.IGNORED,
                not_(InboxEvent.event_type.like(PRIVACY_EVENTS)),
            ),
        ),
    ]


def purge_personal_fields(
    factory: SessionFactory,
    *,
    now: datetime,
    retention: timedelta,
    batch_size: int = BATCH_SIZE,
) -> Purged:
    """Drop personal fields from payloads and details older than ``retention``; counts."""
    cutoff = now - retention
    dialect = engine_of(factory).dialect
    inbox = _in_batches(
        factory,
        lambda: (
            update(InboxEvent)
            .where(
                InboxEvent.id.in_(
                    select(InboxEvent.id)
                    .where(*_inbox_due(cutoff))  # type: ignore[arg-type]
                    .order_by(InboxEvent.id)
                    .limit(batch_size)
                    .scalar_subquery()
                )
            )
            .values(
                payload=without_paths(
                    without_list_keys(InboxEvent.payload, PAYLOAD_LIST_KEYS, dialect),
                    PAYLOAD_PATHS,
                    dialect,
                ),
                personal_data_removed_at=now,
            )
            .execution_options(synchronize_session=False)
        ),
        batch_size,
    )
    events = _in_batches(
        factory,
        lambda: (
            update(MessageEvent)
            .where(
                MessageEvent.id.in_(
                    select(MessageEvent.id)
                    .where(
                        MessageEvent.personal_data_removed_at.is_(None),
                        MessageEvent.occurred_at < cutoff,
                    )
                    .order_by(MessageEvent.id)
                    .limit(batch_size)
                    .scalar_subquery()
                )
            )
            .values(
                detail=without_paths(MessageEvent.detail, [(key,) for key in DETAIL_KEYS], dialect),
                personal_data_removed_at=now,
            )
            .execution_options(synchronize_session=False)
        ),
        batch_size,
    )
    return Purged(inbox_payloads=inbox, message_events=events)


def _in_batches(factory: SessionFactory, statement: object, batch_size: int) -> int:
    total = 0
    while True:
        with transaction(factory) as session:
            done = int(session.execute(statement()).rowcount)  # type: ignore[operator, attr-defined]
        total += done
        if done < batch_size:
            return total
