"""Telling the support team about negative answers: each notification sent at most once.

A sender claims due rows (``pending``, or ``sending`` whose lease ran out) in one short
transaction, sends outside it, and records the outcome in another: ``sent``, or back to
``pending`` with a growing delay (30 s, 1, 2, 4 ... minutes) until
``POSTPURCHASE_SUPPORT_NOTIFY_ATTEMPTS``, then ``failed``. A retried task finds ``sent`` rows
and sends nothing; two senders never claim one row (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, SQLite's single writer).

Only a crash between the helpdesk's 2xx and the commit of ``sent`` can make a second send,
after the lease: the webhook carries ``Idempotency-Key`` (the answer, e.g. ``nps:42``) and
the JSON's ``id`` for the helpdesk to drop it.

Webhook: ``POST`` JSON, ``X-Postpurchase-Timestamp`` (Unix seconds) and
``X-Postpurchase-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` keyed with
``POSTPURCHASE_SUPPORT_WEBHOOK_SECRET`` (else the link-signing secret).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from postpurchase.channels.senders import EmailSender, OutgoingEmail
from postpurchase.exceptions import ProviderError
from postpurchase.feature_settings import SupportSettings
from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.surveys.models import NotificationStatus, SupportNotification

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
_BATCH = 50
# A notification's payload names the customer (name, email, phone) and quotes their words:
# once it is sent or given up, it is kept this long for the team to look back, then reduced
# to what identifies the answer.
PAYLOAD_RETENTION = timedelta(days=30)
_KEPT_FIELDS = ("type", "id", "kind", "score", "scale", "answered_at")


@dataclass
class NotifySummary:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"support notifications: {self.sent} sent, {self.retrying} to retry, "
            f"{self.failed} given up"
        )


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Postpurchase-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def send_due_notifications(
    factory: SessionFactory,
    settings: Settings,
    support: SupportSettings,
    *,
    now: datetime,
    email_sender: Callable[[], EmailSender],
    webhook_secret: bytes,
    client: httpx.Client | None = None,
) -> NotifySummary:
    """Send every due notification once; returns what happened."""
    summary = NotifySummary()
    claimed = _claim(factory, now)
    if not claimed:
        return summary
    own_client = client is None
    http = client or httpx.Client(timeout=support.support_webhook_timeout_seconds)
    try:
        for row_id, key, channel, payload, attempts in claimed:
            try:
                if channel == "webhook":
                    _post(http, support, webhook_secret, key, payload, now)
                else:
                    _email(email_sender(), settings, support, payload)
            except (httpx.HTTPError, ProviderError, _Refused) as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("support notification %s failed (attempt %d): %s", key, attempts, error)
                given_up = attempts >= support.support_notify_attempts
                _record(factory, row_id, now, error=error, given_up=given_up, attempts=attempts)
                summary.failed += given_up
                summary.retrying += not given_up
                summary.errors.append(f"{key}: {error}")
                continue
            _record(factory, row_id, now)
            summary.sent += 1
    finally:
        if own_client:
            http.close()
    return summary


class _Refused(Exception):
    """The helpdesk answered, but not with a 2xx."""


def _claim(factory: SessionFactory, now: datetime) -> list[tuple[int, str, str, Any, int]]:
    with transaction(factory) as session:
        statement = (
            select(SupportNotification)
            .where(
                SupportNotification.next_attempt_at <= now,
                or_(
                    SupportNotification.status == NotificationStatus.PENDING,
                    (SupportNotification.status == NotificationStatus.SENDING)
                    & (SupportNotification.lease_until < now),
                ),
            )
            .order_by(SupportNotification.id)
            .limit(_BATCH)
        )
        if session.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        rows = list(session.execute(statement).scalars())
        for row in rows:
            row.status = NotificationStatus.SENDING
            row.lease_until = now + LEASE
            row.attempts += 1
        return [(r.id, r.key, r.channel, r.payload, r.attempts) for r in rows]


def _record(
    factory: SessionFactory,
    row_id: int,
    now: datetime,
    *,
    error: str | None = None,
    given_up: bool = False,
    attempts: int = 0,
) -> None:
    with transaction(factory) as session:
        row = session.get(SupportNotification, row_id)
        if row is None:
            return
        row.lease_until = None
        if error is None:
            row.status = NotificationStatus.SENT
            row.sent_at = now
            row.last_error = None
            return
        row.last_error = error
        if given_up:
            row.status = NotificationStatus.FAILED
        else:
            row.status = NotificationStatus.PENDING
            row.next_attempt_at = now + timedelta(seconds=30 * 2 ** max(attempts - 1, 0))


def _post(
    http: httpx.Client,
    support: SupportSettings,
    secret: bytes,
    key: str,
    payload: Any,
    now: datetime,
) -> None:
    assert support.support_webhook_url is not None
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    timestamp = int(now.timestamp())
    response = http.post(
        support.support_webhook_url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": str(payload.get("id") or key),
            "X-Postpurchase-Timestamp": str(timestamp),
            "X-Postpurchase-Signature": signature(secret, timestamp, body),
        },
    )
    if not 200 <= response.status_code < 300:
        raise _Refused(f"helpdesk answered {response.status_code}")


def _email(sender: EmailSender, settings: Settings, support: SupportSettings, payload: Any) -> None:
    assert support.support_email is not None
    customer = payload.get("customer") or {}
    order = payload.get("order") or {}
    who = customer.get("name") or customer.get("email") or "A customer"
    what = {"nps": "NPS", "csat": "delivery rating", "review": "review"}[payload["kind"]]
    subject = f"[{what} {payload['score']}] {who}" + (
        f", order {order['name']}" if order.get("name") else ""
    )
    lines = [
        f"{who} answered {payload['score']} ({payload['scale']}) to the {what}.",
        f"Order: {order.get('name') or '-'} ({order.get('platform_id') or '-'})",
        f"Product: {payload['product']}" if payload.get("product") else "",
        f"Email: {customer.get('email') or '-'}   Phone: {customer.get('phone') or '-'}",
        "",
        "Their words:",
        payload.get("comment") or "(no comment)",
        "",
        "The customer has been sent the service recovery message if that campaign is on; "
        "please contact them.",
    ]
    text = "\n".join(line for line in lines if line is not None)
    sender.send_email(
        OutgoingEmail(
            touchpoint_id=0,
            campaign_id="support_notification",
            to_email=support.support_email,
            to_name=None,
            from_email=settings.sender_email,
            from_name=settings.shop_name,
            subject=subject,
            html="<pre style='font-family:inherit;white-space:pre-wrap'>"
            + html.escape(text)
            + "</pre>",
            text=text,
            unsubscribe_url=settings.shop_url,
        )
    )


def notify_support(settings: Settings | None = None, *, now: datetime | None = None) -> str:
    """The ``notify_support`` task: send every due notification; one line saying what
    happened. Nothing configured (no support email or webhook): nothing is ever queued."""
    from datetime import UTC

    from postpurchase.channels.configured import email_sender
    from postpurchase.messages.tokens import signing_key
    from postpurchase.settings import load_settings
    from postpurchase.store.database import open_store

    settings = settings or load_settings()
    support = settings
    secret = support.support_webhook_secret
    now = now or datetime.now(UTC)
    factory = open_store(settings)
    summary = send_due_notifications(
        factory,
        settings,
        support,
        now=now,
        email_sender=lambda: email_sender(settings),
        webhook_secret=secret.get_secret_value().encode() if secret else signing_key(settings),
    )
    with transaction(factory) as session:
        reduced = reduce_old_payloads(session, now=now)
    return summary.line() + (f"; {reduced} old payloads reduced" if reduced else "")


def reduce_old_payloads(session: Session, *, now: datetime) -> int:
    """Strip the personal fields of notifications sent or given up over
    ``PAYLOAD_RETENTION`` ago; returns how many were reduced."""
    rows = session.execute(
        select(SupportNotification).where(
            SupportNotification.status.in_([NotificationStatus.SENT, NotificationStatus.FAILED]),
            SupportNotification.created_at < now - PAYLOAD_RETENTION,
        )
    ).scalars()
    reduced = 0
    for row in rows:
        kept = {k: row.payload[k] for k in _KEPT_FIELDS if k in row.payload}
        if kept != row.payload:
            row.payload = kept
            reduced += 1
    return reduced
