"""The voice-of-the-customer part of the run summary: reviews, NPS, CSAT and complaints."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.reviews.models import ProductReview
from postpurchase.store.models import InboxEvent, SurveyResponse
from postpurchase.surveys.models import NpsResponse, SupportNotification


def feedback_lines(session: Session) -> list[str]:
    """Reviews by status with their average, NPS (promoters minus detractors), CSAT (share
    of 4-5), negative answers and the support notifications they made; [] with none."""
    lines = []
    reviews = dict(
        session.execute(
            select(ProductReview.status, func.count()).group_by(ProductReview.status)
        ).all()
    )
    if reviews:
        average = session.scalar(select(func.avg(ProductReview.rating)))
        parts = ", ".join(f"{status.value} {n}" for status, n in sorted(reviews.items()))
        lines.append(f"reviews: {parts} (average {float(average or 0):.1f} stars)")
    nps = session.execute(select(NpsResponse.score)).scalars().all()
    if nps:
        promoters = sum(1 for s in nps if s >= 9)
        detractors = sum(1 for s in nps if s <= 6)
        score = round(100 * (promoters - detractors) / len(nps))
        lines.append(
            f"NPS: {score:+d} from {len(nps)} answers "
            f"({promoters} promoters, {detractors} detractors)"
        )
    csat = session.execute(select(SurveyResponse.score)).scalars().all()
    if csat:
        satisfied = sum(1 for s in csat if s >= 4)
        lines.append(
            f"CSAT (delivery): {round(100 * satisfied / len(csat))}% satisfied "
            f"from {len(csat)} answers (average {sum(csat) / len(csat):.1f} of 5)"
        )
    negative = session.scalar(
        select(func.count())
        .select_from(InboxEvent)
        .where(InboxEvent.event_type == "feedback.negative")
    )
    if negative:
        sent = dict(
            session.execute(
                select(SupportNotification.status, func.count()).group_by(
                    SupportNotification.status
                )
            ).all()
        )
        told = ", ".join(f"{status.value} {n}" for status, n in sorted(sent.items())) or (
            "none: set POSTPURCHASE_SUPPORT_EMAIL or _SUPPORT_WEBHOOK_URL"
        )
        lines.append(f"complaints (feedback.negative): {negative}; support notifications: {told}")
    return lines
