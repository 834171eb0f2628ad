"""Which review texts a person must see before they are published, and their decision.

A text is held when it contains a link, an email address, a phone number or one of the
shop's blocked words (``POSTPURCHASE_REVIEW_BLOCKED_WORDS``): links and contact details are
the usual spam and the usual personal data, and a person decides better than a filter what
a rude word means in context. Nothing is ever rejected automatically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.reviews.models import ProductReview, ReviewStatus

# A scheme or www., or a bare domain written in lower case ("cheapbags.shop"): "well.It is"
# after a missing space is a sentence, not a link.
_LINK = re.compile(
    r"(?i:\b(?:https?://|www\.)\S+)|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|co|"
    r"shop|store|info|biz|fr|de|uk|nl|es|it|eu|us|ly|me)\b(?:/\S*)?"
)
_EMAIL = re.compile(r"(?i)\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_EMAIL_SPELLED = re.compile(r"(?i)\b\w+\s*[\[(]?\s*at\s*[\])]?\s*\w+\s*[\[(]?\s*dot\s*[\])]?\s*\w+")
# Seven or more digits, allowing the separators people type: "+33 6 12 34 56 78", "555-0134".
_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\s().-]*\d){6,}")


def hold_reasons(text: str, blocked_words: Sequence[str]) -> list[str]:
    """Why ``text`` needs a person; empty when it may be published as it is."""
    reasons = []
    if _EMAIL.search(text) or _EMAIL_SPELLED.search(text):
        reasons.append("contains an email address")
    if _LINK.search(_EMAIL.sub(" ", text)):
        reasons.append("contains a link")
    if _PHONE.search(text):
        reasons.append("contains a phone number")
    lowered = text.lower()
    for word in blocked_words:
        if re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", lowered):
            reasons.append(f"contains the blocked word {word!r}")
    return reasons


class NoSuchReview(LookupError):
    """No review has that id."""


def decide(
    session: Session, *, review_id: int, publish: bool, by: str, now: datetime
) -> ProductReview:
    """Publish or reject review ``review_id`` (a second decision replaces the first)."""
    review = session.get(ProductReview, review_id)
    if review is None:
        raise NoSuchReview(review_id)
    review.status = ReviewStatus.PUBLISHED if publish else ReviewStatus.REJECTED
    review.moderated_by = by
    review.moderated_at = now
    return review


def queue(
    session: Session, *, status: ReviewStatus | None = ReviewStatus.PENDING, limit: int = 200
) -> list[ProductReview]:
    """Reviews in ``status`` (every status when None), oldest first."""
    statement = select(ProductReview).order_by(ProductReview.submitted_at, ProductReview.id)
    if status is not None:
        statement = statement.where(ProductReview.status == status)
    return list(session.execute(statement.limit(limit)).scalars())
