"""Loyalty points for a published review, through the same append-only ledger.

``loyalty.yaml``'s ``review_reward: {points: N}`` awards N points when a review is published
(at once, or when a person approves it), once per product and customer: the ledger row's
cause is ``review:<customer id>:<product key>``, so a second review of the product (another
order, an edit, a re-approval) adds nothing, and a rejected review earns nothing. Only
verified buyers' reviews from the review page earn points (a review from Judge.me or Yotpo
is not stored here). Points follow the file's expiry (``after_earned``: that many months
after publication).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from postpurchase.loyalty.config import ExpiryMode, LoyaltyConfig, load_loyalty_config
from postpurchase.loyalty.earning import add_months
from postpurchase.loyalty.ledger import ledger_insert
from postpurchase.reviews.models import ProductReview, ReviewStatus
from postpurchase.settings import Settings
from postpurchase.store.models import LedgerKind, LoyaltyLedgerEntry


def shop_loyalty_config(settings: Settings) -> LoyaltyConfig | None:
    """The configured loyalty file, or None when there is none."""
    path = settings.loyalty_config
    return load_loyalty_config(path) if path.exists() else None


def reward_published(
    session: Session, review: ProductReview, *, now: datetime, config: LoyaltyConfig | None
) -> int:
    """Award the review's points if it is published and earns them; the points added (0)."""
    reward = config.review_reward if config is not None else None
    if (
        reward is None
        or review.status is not ReviewStatus.PUBLISHED
        or review.customer_id is None
        or not review.verified_buyer
    ):
        return 0
    expiry = config.expiry if config is not None else None
    expires_at = (
        add_months(now, expiry.months)
        if expiry is not None and expiry.mode is ExpiryMode.AFTER_EARNED and expiry.months
        else None
    )
    inserted = session.execute(
        ledger_insert(session)
        .values(
            customer_id=review.customer_id,
            order_id=review.order_id,
            kind=LedgerKind.AWARD,
            points=reward.points,
            cause=f"review:{review.customer_id}:{review.product_key}"[:255],
            note=f"review of {review.product_title}"[:500],
            expires_at=expires_at,
        )
        .returning(LoyaltyLedgerEntry.id)
    )
    return reward.points if inserted.scalar_one_or_none() is not None else 0
