"""The inbox: every accepted webhook becomes one row, at most once per delivery.

``add_to_inbox`` inserts with ``ON CONFLICT (dedupe_key) DO NOTHING`` (SQLite and PostgreSQL
alike), so concurrent or repeated deliveries of one event leave exactly one row, and the
caller learns whether its delivery was the one stored. The payload is
``CanonicalEvent.as_payload()``; processing reads nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postpurchase.events import CanonicalEvent
from postpurchase.store.models import ClaimStatus, InboxEvent

# Stored for rows of topics the engine records but does not act on.
IGNORED_EVENT_TYPE = "ignored"
_KEY_LENGTH = 255  # inbox_events.dedupe_key is String(255)


@dataclass(frozen=True)
class InboxEntry:
    """One row to store; ``payload`` is the canonical event's JSON form."""

    source: str
    dedupe_key: str
    event_type: str
    topic: str | None
    shop: str | None
    subject_id: str | None
    occurred_at: datetime | None
    payload: dict[str, Any] = field(repr=False)  # customer data: kept out of logs
    status: ClaimStatus = ClaimStatus.PENDING

    @classmethod
    def for_event(
        cls,
        event: CanonicalEvent,
        *,
        source: str,
        dedupe_key: str,
        topic: str | None,
        shop: str | None,
    ) -> InboxEntry:
        return cls(
            source=source,
            dedupe_key=dedupe_key,
            event_type=event.type.value,
            topic=topic,
            shop=shop,
            subject_id=event.subject_id(),
            occurred_at=event.occurred_at,
            payload=event.as_payload(),
        )

    @classmethod
    def ignored(
        cls, *, source: str, dedupe_key: str, topic: str, shop: str | None, received_at: datetime
    ) -> InboxEntry:
        """A delivery of a topic the engine does not act on: recorded, never processed.

        Its body is not kept: it is not needed, and it may hold customer data.
        """
        return cls(
            source=source,
            dedupe_key=dedupe_key,
            event_type=IGNORED_EVENT_TYPE,
            topic=topic,
            shop=shop,
            subject_id=None,
            occurred_at=received_at,
            payload={"topic": topic},
            status=ClaimStatus.IGNORED,
        )


def dedupe_key(source: str, *parts: str) -> str:
    """``source:part:part...``; keys longer than the column are hashed (still unique)."""
    key = ":".join((source, *parts))
    if len(key) <= _KEY_LENGTH:
        return key
    return f"{source}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def unstorable_field(entry: InboxEntry, *, texts: bool = True) -> str | None:
    """The path of a value no database can store (NUL, lone surrogate, out-of-range time).

    PostgreSQL refuses NUL in text and JSON, and no driver can encode a lone UTF-16 surrogate;
    both can arrive in valid JSON (``"\\u0000"``, ``"\\ud800"``). Checked before inserting, so
    such input is a 422 rather than a database error. ``texts=False`` checks the time only,
    for callers that know the source document holds no such character.
    """
    if entry.occurred_at is not None:
        try:
            entry.occurred_at.astimezone(UTC)
        except OverflowError:
            return "occurred_at"
    if not texts:
        return None
    pending: list[tuple[str, Any]] = [
        (name, getattr(entry, name)) for name in ("topic", "shop", "subject_id", "dedupe_key")
    ]
    pending.append(("", entry.payload))
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            pending.extend((f"{path}.{k}".lstrip("."), v) for k, v in value.items())
            pending.extend((f"{path}.{k}(key)".lstrip("."), k) for k in value)
        elif isinstance(value, list):
            pending.extend((f"{path}.{i}", v) for i, v in enumerate(value))
        elif isinstance(value, str) and not _storable(value):
            return path
    return None


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_INSERTS: dict[str, Insert] = {
    name: dialect.insert(InboxEvent)
    .on_conflict_do_nothing(index_elements=[InboxEvent.dedupe_key])
    .returning(InboxEvent.id, InboxEvent.dedupe_key)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


def _row(entry: InboxEntry) -> dict[str, Any]:
    return {
        "source": entry.source,
        "dedupe_key": entry.dedupe_key,
        "event_type": entry.event_type,
        "topic": entry.topic,
        "shop": entry.shop,
        "subject_id": entry.subject_id,
        "occurred_at": entry.occurred_at,
        "payload": entry.payload,
        "status": entry.status,
        "attempts": 0,
    }


def add_to_inbox(session: Session, entry: InboxEntry) -> int | None:
    """Insert ``entry`` unless its dedupe key is already held.

    Returns the new row's id, or None when the key was taken (a duplicate delivery, including
    one racing in another transaction: PostgreSQL waits for that transaction to finish).
    The caller commits.
    """
    return add_many_to_inbox(session, [entry])[0]


def add_many_to_inbox(session: Session, entries: list[InboxEntry]) -> list[int | None]:
    """Insert several entries in one statement; per entry, its new id or None if a duplicate.

    When two entries share a dedupe key, the first in the list is the one stored.
    The caller commits.
    """
    if not entries:
        return []
    statement = _INSERTS[session.get_bind().dialect.name]
    rows = session.execute(statement, [_row(e) for e in entries]).all()
    stored = {key: int(row_id) for row_id, key in rows}
    # pop: a later entry with the same key is the duplicate, not a second "accepted".
    return [stored.pop(entry.dedupe_key, None) for entry in entries]
