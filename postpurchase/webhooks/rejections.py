"""Refused webhooks: the answer given, and the count kept for ops in ``rejected_webhooks``.

Refused requests are counted, not stored one by one: anyone can send unsigned posts, and a
row (and SQLite's write lock) per post let a flood cost a write each and push real signature
failures out of a capped table. A row stands for one route, status and kind of reason (the
reason with its numbers blanked) within one hour. The first ``SAMPLES_KEPT`` requests of a
kind in an hour are written at once, each adding a sample (the headers that are safe to
keep, never signatures, cookies or authorisation; the start of the body); later ones only
count in memory, written together every few seconds (and when the app stops). So a flood
costs a few writes an hour, and a new kind of failure is visible at once. At most
``KINDS_PER_HOUR`` kinds per route and status are told apart in an hour; more fold into one
"other reasons" row, so varying the reason cannot multiply rows. New rows stop at ``cap``
rows held (counts of existing rows still grow) until housekeeping prunes.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import RejectedWebhook

log = logging.getLogger(__name__)

BODY_EXCERPT_CHARS = 2048
SAMPLES_KEPT = 3
KINDS_PER_HOUR = 8
FLUSH_SECONDS = 5.0
OTHER_REASONS = "other reasons (more kinds than are told apart in an hour)"
_NUMBERS = re.compile(r"\d+")
_SAFE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        "x-shopify-topic",
        "x-shopify-shop-domain",
        "x-shopify-api-version",
        "x-shopify-webhook-id",
        "x-shopify-event-id",
        "x-shopify-triggered-at",
        "x-wc-webhook-source",
        "x-wc-webhook-topic",
        "x-wc-webhook-resource",
        "x-wc-webhook-event",
        "x-wc-webhook-id",
        "x-wc-webhook-delivery-id",
        "x-twilio-email-event-webhook-timestamp",
        "i-twilio-idempotency-token",
    }
)
_HEADER_VALUE_CHARS = 256


class Rejection(Exception):
    """A request refused with ``status_code``; ``problems`` are (field path, problem) pairs."""

    def __init__(
        self, status_code: int, reason: str, problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason
        self.problems = problems or []

    def answer(self) -> dict[str, object]:
        body: dict[str, object] = {"status": "rejected", "reason": self.reason}
        if self.problems:
            body["errors"] = [{"field": path, "problem": msg} for path, msg in self.problems]
        return body

    def summary(self) -> str:
        shown = "; ".join(f"{path}: {msg}" for path, msg in self.problems[:10])
        return f"{self.reason}: {shown}" if shown else self.reason


def safe_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The headers worth keeping for ops, lower-cased and cut short; all others dropped."""
    return {
        name.lower(): value[:_HEADER_VALUE_CHARS]
        for name, value in headers
        if name.lower() in _SAFE_HEADERS
    }


def body_excerpt(body: bytes) -> str:
    # Undecodable bytes and NUL become U+FFFD: any database can store the excerpt.
    text = body[: BODY_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return text[:BODY_EXCERPT_CHARS].replace("\x00", "\ufffd")


def reason_kind(reason: str) -> str:
    """What makes two reasons the same kind: their text with every number blanked."""
    return _NUMBERS.sub("#", reason)[:200]


@dataclass
class _Pending:
    factory: SessionFactory
    route: str
    status_code: int
    reason: str
    cap: int
    count: int = 0
    last_seen: datetime | None = None


class RejectionCounter:
    """Counts refused requests per kind and hour for one app (see the module doc)."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._bucket: datetime | None = None
        self._samples_taken: dict[str, int] = {}  # per key, in the current hour
        self._kinds: dict[tuple[str, int], set[str]] = {}  # per route and status
        self._pending: dict[tuple[str, datetime], _Pending] = {}
        self._timer: threading.Timer | None = None

    def record(
        self,
        factory: SessionFactory,
        *,
        route: str,
        rejection: Rejection,
        headers: list[tuple[str, str]],
        body: bytes,
        cap: int,
    ) -> bool:
        """Count a refused request; returns whether anything was written now.

        Never raises: a database failure while counting a rejection is logged and must not
        change the answer the sender gets.
        """
        now = self._clock()
        bucket = now.replace(minute=0, second=0, microsecond=0)
        status = rejection.status_code
        with self._lock:
            if bucket != self._bucket:  # a new hour: every kind starts again
                self._bucket, self._samples_taken, self._kinds = bucket, {}, {}
            kinds = self._kinds.setdefault((route, status), set())
            kind = reason_kind(rejection.reason)
            if kind not in kinds and len(kinds) >= KINDS_PER_HOUR:
                kind = OTHER_REASONS
            kinds.add(kind)
            key = hashlib.sha256(f"{route}\n{status}\n{kind}".encode()).hexdigest()
            taken = self._samples_taken.get(key, 0)
            if taken >= SAMPLES_KEPT:
                pending = self._pending.setdefault(
                    (key, bucket), _Pending(factory, route, status, rejection.summary(), cap)
                )
                pending.count += 1
                pending.last_seen = now
                self._schedule_flush()
                return False
            self._samples_taken[key] = taken + 1
        sample = {
            "at": now.isoformat(),
            "reason": rejection.summary()[:4000],
            "headers": safe_headers(headers),
            "body_excerpt": body_excerpt(body),
        }
        return _write(
            factory,
            key=key,
            bucket=bucket,
            route=route,
            status_code=status,
            reason=rejection.summary() if kind != OTHER_REASONS else OTHER_REASONS,
            now=now,
            count=1,
            sample=sample,
            cap=cap,
        )

    def flush(self) -> None:
        """Write the counts held in memory (one update per kind)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._timer = None
        for (key, bucket), entry in pending.items():
            _write(
                entry.factory,
                key=key,
                bucket=bucket,
                route=entry.route,
                status_code=entry.status_code,
                reason=entry.reason,
                now=entry.last_seen or bucket,
                count=entry.count,
                sample=None,
                cap=entry.cap,
            )

    def _schedule_flush(self) -> None:  # called with the lock held
        if self._timer is None:
            self._timer = threading.Timer(FLUSH_SECONDS, self.flush)
            self._timer.daemon = True
            self._timer.start()


def _write(
    factory: SessionFactory,
    *,
    key: str,
    bucket: datetime,
    route: str,
    status_code: int,
    reason: str,
    now: datetime,
    count: int,
    sample: dict[str, Any] | None,
    cap: int,
) -> bool:
    """Add ``count`` (and ``sample``) to the kind's row of the hour, creating it if needed."""
    try:
        with transaction(factory) as session:
            found = select(RejectedWebhook).where(
                RejectedWebhook.reason_key == key, RejectedWebhook.bucket_start == bucket
            )
            row = session.execute(found.with_for_update()).scalar_one_or_none()
            if row is None:
                if _full(session, cap):
                    log.warning("rejected_webhooks holds %d rows: not recording %s", cap, route)
                    return False
                try:
                    with session.begin_nested():  # another process may create it meanwhile
                        session.add(
                            RejectedWebhook(
                                received_at=now,
                                route=route[:128],
                                status_code=status_code,
                                reason=reason[:4000],
                                headers=(sample or {}).get("headers", {}),
                                body_excerpt=(sample or {}).get("body_excerpt", ""),
                                reason_key=key,
                                bucket_start=bucket,
                                last_seen_at=now,
                                count=count,
                                samples=[sample] if sample else [],
                            )
                        )
                    return True
                except IntegrityError:
                    row = session.execute(found.with_for_update()).scalar_one()
            row.count += count
            row.last_seen_at = max(row.last_seen_at or now, now)
            if sample is not None and len(row.samples) < SAMPLES_KEPT:
                row.samples = [*row.samples, sample]
        return True
    except SQLAlchemyError as exc:
        log.error("could not record a rejected webhook on %s: %s", route, type(exc).__name__)
        return False


def _full(session: Any, cap: int) -> bool:
    held = session.execute(
        select(RejectedWebhook.id).order_by(RejectedWebhook.id).offset(cap - 1).limit(1)
    ).first()
    return held is not None
