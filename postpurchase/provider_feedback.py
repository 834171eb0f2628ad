"""What provider feedback means: which SendGrid events suppress an address, which SMS words
opt a number out or in, and how provider events are stored (once each).

The webhook routes (``webhooks.providers``) verify and parse what providers send and call
these; the rows themselves are written by ``feedback`` and ``consent``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from postpurchase import consent, feedback
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import Channel, Touchpoint

log = logging.getLogger(__name__)

# SendGrid events that suppress the address (a bounce only when not "blocked").
SUPPRESSING = {"bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"}
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}
_BIGINT_MAX = 2**63 - 1


def sms_keyword(body: str) -> str:
    """The keyword of an inbound SMS, as STOP_WORDS, START_WORDS and HELP_WORDS spell it."""
    return body.strip().upper()


def store_sendgrid_events(
    session: Any, events: list[dict[str, Any]], *, now: datetime
) -> tuple[int, int]:
    """Store and act on each event; returns (new, skipped as unstorable).

    Each event runs in a savepoint: one whose values the database refuses (a NUL in a string,
    a number out of range) is skipped and counted without losing the others. Any other
    database error (connection lost) fails the whole batch, and SendGrid sends it again.
    """
    claimed = {_int(e.get("touchpoint_id")) for e in events} - {None}
    known = set(session.execute(select(Touchpoint.id).where(Touchpoint.id.in_(claimed))).scalars())
    new = skipped = 0
    for event in events:
        event_id, kind = event.get("sg_event_id"), str(event.get("event") or "")
        if not event_id or not kind:
            continue  # nothing to deduplicate on: SendGrid always sends both
        try:
            with session.begin_nested():
                new += _store_sendgrid_event(session, event, kind, known, now=now)
        except (DataError, IntegrityError) as exc:
            skipped += 1
            log.warning("skipped a SendGrid event the database refused: %s", type(exc).__name__)
    return new, skipped


def _store_sendgrid_event(
    session: Any, event: dict[str, Any], kind: str, known: set[int], *, now: datetime
) -> int:
    touchpoint_id = _int(event.get("touchpoint_id"))
    occurred_at = _from_unix(event.get("timestamp")) or now
    message_id = str(event.get("sg_message_id") or "").split(".")[0][:128] or None
    row = {
        "provider": "sendgrid",
        "provider_event_id": str(event["sg_event_id"])[:255],
        "touchpoint_id": touchpoint_id if touchpoint_id in known else None,
        "provider_message_id": message_id,
        "event": kind[:32],
        "occurred_at": occurred_at,
        "detail": event,
    }
    if not feedback.record_events(session, [row]):
        return 0  # a redelivered event: already acted on
    email = str(event.get("email") or "").strip().lower()
    if not email:
        return 1
    if kind in SUPPRESSING and not (kind == "bounce" and event.get("type") == "blocked"):
        _sendgrid_opt_out(session, event, kind, email, occurred_at, now)
    elif kind == "group_resubscribe":
        # lifts only what the same group's unsubscribe did (consent.resubscribe_group)
        consent.resubscribe_group(
            session,
            email=email,
            group_id=event.get("asm_group_id"),
            reference=f"sendgrid:{kind}:{event['sg_event_id']}",
            now=occurred_at,
        )
    return 1


def _sendgrid_opt_out(
    session: Any, event: dict[str, Any], kind: str, email: str, at: datetime, now: datetime
) -> None:
    """Suppress the address; an unsubscribe also denies email marketing consent. A group
    unsubscribe's suppression names its group, so only that group's resubscribe lifts it."""
    grouped = kind == consent.GROUP_UNSUBSCRIBE
    source = consent.group_source(event.get("asm_group_id")) if grouped else "sendgrid"
    feedback.suppress(
        session, channel=Channel.EMAIL, address=email, reason=kind, source=source, now=now
    )
    if not grouped:
        consent.override_group_suppression(session, address=email, reason=kind, source=source)
    if kind in ("unsubscribe", consent.GROUP_UNSUBSCRIBE):
        consent.unsubscribe_email(
            session,
            consent.customers_with_email(session, email),
            source=consent.SENDGRID_UNSUBSCRIBE,
            reference=f"sendgrid:{kind}:{event.get('sg_event_id')}",
            at=at,
        )


def store_twilio_status(store: SessionFactory, form: dict[str, str], sid: str, status: str) -> None:
    """Record a Twilio delivery status once per (message, status); an error 21610 (the
    number said STOP to the provider) opts it out."""
    now = datetime.now(UTC)
    with transaction(store) as session:
        touchpoint_id = session.execute(
            select(Touchpoint.id).where(Touchpoint.provider_message_id == sid[:128])
        ).scalar_one_or_none()
        new = feedback.record_events(
            session,
            [
                {
                    "provider": "twilio",
                    "provider_event_id": f"{sid}:{status}"[:255],
                    "touchpoint_id": touchpoint_id,
                    "provider_message_id": sid[:128],
                    "event": status[:32],
                    "occurred_at": now,
                    "detail": form,
                }
            ],
        )
        if new and form.get("ErrorCode") == "21610" and form.get("To"):
            feedback.opt_out_sms(
                session, phone=form["To"], source="twilio:21610", now=now, reference=f"twilio:{sid}"
            )


def _int(value: Any) -> int | None:
    """A row id from a custom arg, or None: anything a BIGINT cannot hold is no id of ours."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 < number <= _BIGINT_MAX else None


def _from_unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
