"""Storing survey answers: NPS (0-10) with its comment, and the check-in's 1-5 with its
comment; each negative one goes on to ``negative.note_negative``.

One answer per touchpoint: a later answer for the same message replaces the earlier one
(what the person last chose is kept), and a negative answer notifies the team once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postpurchase import feedback
from postpurchase.feature_settings import SupportSettings
from postpurchase.store.models import Customer, Order, Touchpoint
from postpurchase.surveys.models import NpsResponse, SupportNotification
from postpurchase.surveys.negative import note_negative

COMMENT_LIMIT = 2000


def _touchpoint(session: Session, touchpoint_id: int, customer_id: int) -> Touchpoint | None:
    return session.execute(
        select(Touchpoint).where(
            Touchpoint.id == touchpoint_id, Touchpoint.customer_id == customer_id
        )
    ).scalar_one_or_none()


def record_nps(
    session: Session,
    *,
    touchpoint_id: int,
    customer_id: int,
    score: int,
    comment: str | None,
    support: SupportSettings,
    now: datetime,
) -> bool:
    """Store the NPS answer (a later one replaces it); False if the touchpoint is not the
    customer's. A detractor's answer emits ``feedback.negative`` and tells the team."""
    touchpoint = _touchpoint(session, touchpoint_id, customer_id)
    if touchpoint is None:
        return False
    comment = (comment or "").strip()[:COMMENT_LIMIT] or None
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(NpsResponse)
        .values(
            touchpoint_id=touchpoint_id,
            customer_id=customer_id,
            order_id=touchpoint.order_id,
            score=score,
            comment=comment,
            responded_at=now,
        )
        .on_conflict_do_update(
            index_elements=["touchpoint_id"],
            set_={"score": score, "comment": comment, "responded_at": now},
        )
    )
    _after_answer(session, "nps", touchpoint, score, comment, support, now)
    return True


def record_csat(
    session: Session,
    *,
    touchpoint_id: int,
    customer_id: int,
    score: int,
    comment: str | None,
    support: SupportSettings,
    now: datetime,
) -> bool:
    """The check-in's 1-5 with its comment (``feedback.record_survey``), then the same
    negative rule (1-2)."""
    comment = (comment or "").strip()[:COMMENT_LIMIT] or None
    recorded = feedback.record_survey(
        session,
        touchpoint_id=touchpoint_id,
        customer_id=customer_id,
        score=score,
        now=now,
        comment=comment,
    )
    touchpoint = _touchpoint(session, touchpoint_id, customer_id) if recorded else None
    if touchpoint is not None:
        _after_answer(session, "csat", touchpoint, score, comment, support, now)
    return recorded


def _after_answer(
    session: Session,
    kind: str,
    touchpoint: Touchpoint,
    score: int,
    comment: str | None,
    support: SupportSettings,
    now: datetime,
) -> None:
    customer = session.get(Customer, touchpoint.customer_id)
    order = session.get(Order, touchpoint.order_id) if touchpoint.order_id else None
    if customer is None:
        return
    queued = note_negative(
        session,
        kind=kind,
        answer_id=touchpoint.id,
        score=score,
        comment=comment,
        customer=customer,
        order=order,
        support=support,
        now=now,
    )
    if queued:
        _refresh_unsent_comment(session, kind, touchpoint.id, comment)


def _refresh_unsent_comment(
    session: Session, kind: str, answer_id: int, comment: str | None
) -> None:
    """A comment added after a first negative answer reaches the team if the notification
    is not out yet (never a second notification)."""
    rows = session.execute(
        select(SupportNotification).where(
            SupportNotification.key.in_(
                [f"email:{kind}:{answer_id}", f"webhook:{kind}:{answer_id}"]
            ),
            SupportNotification.status == "pending",
            SupportNotification.attempts == 0,
        )
    ).scalars()
    for row in rows:
        if comment and row.payload.get("comment") != comment:
            row.payload = {**row.payload, "comment": comment}
