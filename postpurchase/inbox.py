"""The inbox: every accepted webhook becomes one row, at most once per delivery.

``add_to_inbox`` inserts with ``ON CONFLICT (dedupe_key) DO NOTHING`` (SQLite and PostgreSQL
alike), so concurrent or repeated deliveries of one event leave exactly one row, and the
caller learns whether its delivery was the one stored. The payload is
``CanonicalEvent.as_payload()`` (written as ``payload_json()``); processing reads nothing
else.

Set-based writers (a tier refresh that moves thousands of customers) build their rows in SQL
and hand the ``SELECT`` to ``add_selected_to_inbox``, with keys from ``dedupe_key_sql`` (the
same ``source:part:part`` form as ``dedupe_key``) and payloads from ``json_object_sql``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import msgspec
from psycopg.types.json import Json
from sqlalchemy import String, cast, func, literal, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Selectable

from postpurchase.event_structs import CheckedEvent
from postpurchase.events import CanonicalEvent
from postpurchase.store.columns import UtcDateTime
from postpurchase.store.models import ClaimStatus, InboxEvent
from postpurchase.store.statements import dialect_insert

# Stored for rows of topics the engine records but does not act on.
IGNORED_EVENT_TYPE = "ignored"
_KEY_LENGTH = 255  # inbox_events.dedupe_key is String(255)


@dataclass(frozen=True)
class InboxEntry:
    """One row to store. ``payload`` is the canonical event (stored as its JSON form), or the
    small object stored for a delivery that carries none (ignored topics, privacy requests).
    """

    source: str
    dedupe_key: str
    event_type: str
    topic: str | None
    shop: str | None
    subject_id: str | None
    occurred_at: datetime | None
    # customer data: not logged
    payload: CanonicalEvent | CheckedEvent | dict[str, Any] = field(repr=False)
    status: ClaimStatus = ClaimStatus.PENDING
    # Told the sender, not stored: what intake left out of an accepted event (an unusable
    # email) or why it ignored a delivery (a test order).
    notes: tuple[str, ...] = ()

    @cached_property
    def payload_json(self) -> bytes:
        """The payload as it is stored, UTF-8 JSON. Made once: intake reads it before the
        entry is queued (``postpurchase.webhooks.intake``), and the insert embeds it."""
        payload = self.payload
        if isinstance(payload, dict):
            # compact, as events are written; refuses what JSON cannot hold (a set)
            return json.dumps(payload, separators=(",", ":")).encode()
        return payload.payload_json()

    @classmethod
    def for_event(
        cls,
        event: CanonicalEvent | CheckedEvent,
        *,
        source: str,
        dedupe_key: str,
        topic: str | None,
        shop: str | None,
        notes: tuple[str, ...] = (),
    ) -> InboxEntry:
        return cls(
            source=source,
            dedupe_key=dedupe_key,
            event_type=event.type.value,
            topic=topic,
            shop=shop,
            subject_id=event.subject_id(),
            occurred_at=event.occurred_at,
            payload=event,
            notes=notes,
        )

    @classmethod
    def ignored(
        cls,
        *,
        source: str,
        dedupe_key: str,
        topic: str,
        shop: str | None,
        received_at: datetime,
        reason: str | None = None,
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
            payload={"topic": topic, **({"ignored": reason} if reason else {})},
            status=ClaimStatus.IGNORED,
            notes=(reason,) if reason else (),
        )


def dedupe_key(source: str, *parts: str) -> str:
    """``source:part:part...``; keys longer than the column are hashed (still unique)."""
    key = ":".join((source, *parts))
    if len(key) <= _KEY_LENGTH:
        return key
    return f"{source}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def dedupe_key_sql(source: Any, *parts: Any) -> Any:
    """``dedupe_key`` as a SQL expression, for rows built in SQL: ``source:part:part...``
    (columns, or text taken as it is).

    For parts of bounded length only (names, ids): the key is not hashed, so the caller makes
    sure it fits the column.
    """
    key: Any = cast(source, String)
    for part in parts:
        key = key + literal(":") + (literal(part) if isinstance(part, str) else cast(part, String))
    return key


def json_object_sql(dialect: str, fields: dict[str, Any]) -> ColumnElement[Any]:
    """A JSON object built in SQL, with null members left out (as ``as_payload()`` does)."""
    pairs = [part for key, value in fields.items() for part in (literal(key), value)]
    if dialect == "postgresql":
        return func.jsonb_strip_nulls(func.jsonb_build_object(*pairs))
    # JSON merge-patch drops members whose value is null, recursively.
    return func.json_patch("{}", func.json_object(*pairs))


# What a set-based writer's SELECT gives, in this order (see add_selected_to_inbox).
SELECTED_COLUMNS = (
    "source",
    "dedupe_key",
    "event_type",
    "topic",
    "shop",
    "subject_id",
    "occurred_at",
    "payload",
    "status",
    "attempts",
)


def add_selected_to_inbox(session: Session, rows: Selectable) -> None:
    """Insert the inbox rows ``rows`` selects (``SELECTED_COLUMNS``, in order) in one
    ``INSERT ... SELECT``, skipping dedupe keys already held. The caller commits."""
    statement = dialect_insert(session, InboxEvent).from_select(list(SELECTED_COLUMNS), rows)
    session.execute(statement.on_conflict_do_nothing(index_elements=["dedupe_key"]))


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
    payload = entry.payload
    pending.append(("", payload if isinstance(payload, dict) else payload.as_payload()))
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


# One statement per database, whatever the batch size: the rows travel as one JSON array that
# the database unpacks itself. A multi-row VALUES list (what an executemany with RETURNING
# becomes) is a new statement text for every batch size, with ten parameters a row each bound
# and converted on their own: several times the client CPU per row, and the inbox insert is
# the hot path of every webhook. Columns left out take their defaults (received_at = now).
# On PostgreSQL each row is an object (``_rows``) read by ``json_to_recordset``, which
# gives its payload as the text intake wrote, kept so in the json column (migration 0023):
# the claim hands it back without writing it out again, and a drainer reads it compact. The
# bulk statements read their rows by position from parsed jsonb instead
# (``postpurchase.store.statements``); read so, a payload became jsonb, parsed on its way in
# and written out on its way back. Measured per row, the database's CPU is the same either
# way. Written in the driver's own parameter style: intake's group commit hands it to psycopg
# itself (``add_many_with_async_driver``).
POSTGRES_INSERT = """
    INSERT INTO inbox_events
        (source, dedupe_key, event_type, topic, shop, subject_id, occurred_at, payload,
         status, attempts)
    SELECT source, dedupe_key, event_type, topic, shop, subject_id, occurred_at, payload,
           status, 0
    FROM json_to_recordset(CAST(%(rows)s AS json)) AS r(
        source text, dedupe_key text, event_type text, topic text, shop text,
        subject_id text, occurred_at timestamptz, payload json, status text)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, dedupe_key
    """
_INSERTS = {
    "postgresql": text(POSTGRES_INSERT.replace("%(rows)s", ":rows")),
    # json_extract rather than ->> (SQLite 3.38+), for the older SQLite some Pythons link.
    # WHERE true: SQLite's parser needs it to read the ON CONFLICT of an INSERT ... SELECT.
    "sqlite": text(
        """
        INSERT INTO inbox_events
            (source, dedupe_key, event_type, topic, shop, subject_id, occurred_at, payload,
             status, attempts)
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
               json_extract(value, '$[2]'), json_extract(value, '$[3]'),
               json_extract(value, '$[4]'), json_extract(value, '$[5]'),
               json_extract(value, '$[6]'), json_extract(value, '$[7]'),
               json_extract(value, '$[8]'), 0
        FROM json_each(:rows) WHERE true
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id, dedupe_key
        """
    ),
}
_TIME = UtcDateTime()


# A row as PostgreSQL's insert reads it, by name (``json_to_recordset``): the columns ``_row``
# gives, SELECTED_COLUMNS but ``attempts`` (0, written by the inserts themselves). A struct: a
# dict per row took msgspec a third longer to make and write.
_PostgresRow = msgspec.defstruct("_PostgresRow", [(name, Any) for name in SELECTED_COLUMNS[:-1]])


def _rows(entries: list[InboxEntry], dialect: Dialect) -> list[Any]:
    """The rows of ``entries`` as the insert on ``dialect`` reads them: by name on PostgreSQL,
    by position on SQLite."""
    if dialect.name == "postgresql":
        return [_PostgresRow(*_row(entry, dialect)) for entry in entries]
    return [_row(entry, dialect) for entry in entries]


def _row(entry: InboxEntry, dialect: Dialect) -> tuple[Any, ...]:
    """``entry``'s values in the order SQLite's insert reads them by position (``$[i]``):
    source, dedupe_key, event_type, topic, shop, subject_id, occurred_at, payload, status."""
    occurred_at = _TIME.process_bind_param(entry.occurred_at, dialect)
    return (
        entry.source,
        entry.dedupe_key,
        entry.event_type,
        entry.topic,
        entry.shop,
        entry.subject_id,
        # As the ORM stores it: UTC with its offset, or on SQLite naive UTC in SQLAlchemy's
        # text format, so comparisons and reads see no difference.
        None if occurred_at is None else occurred_at.isoformat(" ", "microseconds"),
        # Already JSON: embedded as it is, not decoded and encoded again.
        msgspec.Raw(entry.payload_json),
        entry.status.value,
    )


def add_to_inbox(session: Session, entry: InboxEntry) -> int | None:
    """Insert ``entry`` unless its dedupe key is already held.

    Returns the new row's id, or None when the key was taken (a duplicate delivery, including
    one racing in another transaction: PostgreSQL waits for that transaction to finish).
    The caller commits.
    """
    return add_many_to_inbox(session.connection(), [entry])[0]


def add_many_to_inbox(connection: Connection, entries: list[InboxEntry]) -> list[int | None]:
    """Insert several entries in one statement; per entry, its new id or None if a duplicate.

    When two entries share a dedupe key, the first in the list is the one stored.
    The caller commits (or runs the statement in autocommit: it is a transaction by itself).
    """
    if not entries:
        return []
    dialect = connection.dialect
    document = _document(entries, dialect)
    rows = connection.execute(_INSERTS[dialect.name], {"rows": document}).all()
    return _outcomes(entries, rows)


async def add_many_with_async_driver(
    driver: Any, dialect: Dialect, entries: list[InboxEntry]
) -> list[int | None]:
    """``add_many_to_inbox`` on PostgreSQL, run on the driver's own asynchronous connection
    (``psycopg.AsyncConnection``).

    For intake's group commit, which writes its batches on the event loop: SQLAlchemy's
    statement handling cost more client CPU than the insert itself. Raises the driver's
    errors as they are; the caller maps them.
    """
    if not entries:
        return []
    # Handed to the driver as the bytes msgspec writes, typed json: as text, they were
    # decoded here and encoded again by the driver, two copies of every payload that cost
    # more than the rest of the statement's client work once a payload holds any character
    # beyond ASCII (most orders do).
    document = Json(_rows(entries, dialect), dumps=msgspec.json.encode)
    async with driver.cursor() as cursor:
        await cursor.execute(POSTGRES_INSERT, {"rows": document})
        rows = await cursor.fetchall()
    return _outcomes(entries, rows)


def _document(entries: list[InboxEntry], dialect: Dialect) -> str:
    return msgspec.json.encode(_rows(entries, dialect)).decode()


def _outcomes(entries: list[InboxEntry], rows: Any) -> list[int | None]:
    stored = {key: int(row_id) for row_id, key in rows}
    # pop: a later entry with the same key is the duplicate, not a second "accepted".
    return [stored.pop(entry.dedupe_key, None) for entry in entries]
