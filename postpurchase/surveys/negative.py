"""A negative answer: the ``feedback.negative`` event and the support team's notifications.

Negative is a detractor's NPS (0-6), a CSAT of 1 or 2 on the delivery check-in, or a review
of 1 or 2 stars. ``note_negative`` runs in the transaction that stores the answer and:

- writes a ``feedback.negative`` inbox event about the order (dedupe key
  ``feedback-negative:<answer>``), which campaigns such as ``service_recovery`` trigger on;
- queues one ``support_notifications`` row per way of telling the team (email to
  ``POSTPURCHASE_SUPPORT_EMAIL``, JSON to ``POSTPURCHASE_SUPPORT_WEBHOOK_URL``), unique by
  ``<channel>:<answer>``: a changed answer that stays negative, or a second save, adds
  nothing. ``notify.send_due_notifications`` sends them.

``<answer>`` is ``nps:<touchpoint id>``, ``csat:<touchpoint id>`` or ``review:<review id>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postpurchase.events import NO_CURRENCY, CanonicalEvent, EventType, OrderSnapshot
from postpurchase.inbox import InboxEntry, add_to_inbox
from postpurchase.store.models import Customer, Order
from postpurchase.surveys.models import NotificationStatus, SupportNotification
from postpurchase.surveys.settings import SupportSettings

_COMMENT_LIMIT = 2000  # what a notification carries of the customer's words


def is_negative(kind: str, score: int) -> bool:
    """NPS 0-6 (detractor), CSAT 1-2, review 1-2 stars."""
    if kind == "nps":
        return score <= 6
    return score <= 2


def note_negative(
    session: Session,
    *,
    kind: str,
    answer_id: int,
    score: int,
    comment: str | None,
    customer: Customer,
    order: Order | None,
    support: SupportSettings,
    now: datetime,
    product: str | None = None,
) -> bool:
    """Emit and queue what a negative answer needs; False (nothing done) if it is not one."""
    if not is_negative(kind, score):
        return False
    answer = f"{kind}:{answer_id}"
    if order is not None:
        event = CanonicalEvent(
            type=EventType.FEEDBACK_NEGATIVE,
            occurred_at=now,
            order=OrderSnapshot(external_id=order.external_id, currency=NO_CURRENCY),
        )
        add_to_inbox(
            session,
            InboxEntry.for_event(
                event,
                source=order.source,
                dedupe_key=f"feedback-negative:{answer}",
                topic=f"feedback.{kind}",
                shop=order.shop or None,
            ),
        )
    payload = _payload(kind, answer, score, comment, customer, order, now, product)
    channels = [
        channel
        for channel, target in (
            ("email", support.support_email),
            ("webhook", support.support_webhook_url),
        )
        if target
    ]
    for channel in channels:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(SupportNotification)
            .values(
                key=f"{channel}:{answer}",
                channel=channel,
                payload=payload,
                status=NotificationStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
    return True


def _payload(
    kind: str,
    answer: str,
    score: int,
    comment: str | None,
    customer: Customer,
    order: Order | None,
    now: datetime,
    product: str | None,
) -> dict[str, Any]:
    scale = {"nps": "0-10", "csat": "1-5", "review": "1-5 stars"}[kind]
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p) or None
    return {
        "type": "feedback.negative",
        "id": answer,  # also the Idempotency-Key: one per answer
        "kind": kind,
        "score": score,
        "scale": scale,
        "comment": (comment or "")[:_COMMENT_LIMIT] or None,
        "product": product,
        "answered_at": now.isoformat(),
        "customer": {
            "name": name,
            "email": customer.email,
            "phone": customer.phone,
            "platform_id": f"{customer.source}:{customer.external_id}",
        },
        "order": (
            {"name": order.name, "platform_id": f"{order.source}:{order.external_id}"}
            if order is not None
            else None
        ),
    }
