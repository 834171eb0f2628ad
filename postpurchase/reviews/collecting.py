"""The review page's data: what an order offers to review, and storing what is posted.

A review link is signed for one customer and one touchpoint of theirs; the touchpoint names
the order, so the link opens that order's page only, and whatever it posts is a review by a
verified buyer. The order's products are offered once each (the variants of a product are one
thing to review, as in ``order.products`` of the message). A review can be edited for
``review_edit_days`` after it was first sent; each save is moderated again.

The first save of each product's review writes a ``review.submitted`` event to the inbox in
the same transaction (dedupe key ``review-page:<review id>``): processing then marks the order
reviewed, cancels pending reminders, and starts campaigns triggered by it, as for a review
reported by the platform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.events import NO_CURRENCY, CanonicalEvent, EventType, OrderSnapshot, Review
from postpurchase.inbox import InboxEntry, add_to_inbox
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.reviews.models import ProductReview, ReviewStatus
from postpurchase.reviews.moderation import hold_reasons
from postpurchase.reviews.rewards import reward_published
from postpurchase.reviews.settings import ReviewSettings
from postpurchase.store.models import Customer, Order, OrderItem, Product, Touchpoint
from postpurchase.surveys.negative import note_negative
from postpurchase.surveys.settings import SupportSettings, load_support_settings

TITLE_LIMIT = 200
BODY_LIMIT = 5000
NAME_LIMIT = 64


@dataclass(frozen=True)
class ReviewableProduct:
    key: str  # "id:<product id>" or "title:<title>"
    product_id: str | None
    title: str
    image_url: str | None
    review: ProductReview | None  # the customer's review of it from this order, if any
    editable: bool  # no review yet, or one still in its edit window


@dataclass(frozen=True)
class ReviewOrder:
    order: Order
    customer: Customer
    touchpoint_id: int
    products: list[ReviewableProduct]


@dataclass(frozen=True)
class Answer:
    """What the page posted for one product."""

    product_key: str
    rating: int
    title: str
    body: str


def product_key(product_id: str | None, title: str) -> str:
    return f"id:{product_id}" if product_id else f"title:{title}"[:255]


def review_order(
    session: Session,
    *,
    customer_id: int,
    touchpoint_id: int,
    settings: ReviewSettings,
    now: datetime,
) -> ReviewOrder | None:
    """The order behind a review link, with its products; None when the touchpoint is not the
    customer's or is about no order."""
    touchpoint = session.execute(
        select(Touchpoint).where(
            Touchpoint.id == touchpoint_id, Touchpoint.customer_id == customer_id
        )
    ).scalar_one_or_none()
    if touchpoint is None or touchpoint.order_id is None:
        return None
    order = session.get(Order, touchpoint.order_id)
    customer = session.get(Customer, customer_id)
    if order is None or customer is None or order.customer_id != customer_id:
        return None
    items = list(
        session.execute(
            select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.id)
        ).scalars()
    )
    ids = [i.product_id for i in items if i.product_id]
    catalogue = {
        p.external_id: p
        for p in session.execute(
            select(Product).where(
                Product.source == order.source,
                Product.shop == order.shop,
                Product.external_id.in_(ids),
            )
        ).scalars()
    }
    existing = {
        r.product_key: r
        for r in session.execute(
            select(ProductReview).where(ProductReview.order_id == order.id)
        ).scalars()
    }
    window = timedelta(days=settings.review_edit_days)
    products: dict[str, ReviewableProduct] = {}
    for item in items:
        known = catalogue.get(item.product_id or "")
        title = (known.title if known is not None else None) or item.title
        key = product_key(item.product_id, title)
        if key in products:
            continue
        review = existing.get(key)
        products[key] = ReviewableProduct(
            key=key,
            product_id=item.product_id,
            title=title,
            image_url=(known.image_url if known is not None else None) or item.image_url,
            review=review,
            editable=review is None or now <= review.submitted_at + window,
        )
    return ReviewOrder(order, customer, touchpoint.id, list(products.values()))


def default_display_name(customer: Customer) -> str:
    """ "Chloé M.": the first name and the initial, never the full name."""
    first = (customer.first_name or "").strip()
    initial = (customer.last_name or "").strip()[:1]
    if not first:
        return "Verified buyer"
    return f"{first} {initial}.".strip() if initial else first


@dataclass(frozen=True)
class SaveOutcome:
    saved: list[ProductReview]
    refused: dict[str, str]  # product key -> why (not on the order, edit window over)


def save_reviews(
    session: Session,
    target: ReviewOrder,
    answers: Sequence[Answer],
    *,
    display_name: str,
    settings: ReviewSettings,
    now: datetime,
    support: SupportSettings | None = None,
    loyalty: LoyaltyConfig | None = None,
) -> SaveOutcome:
    """Store ``answers`` for ``target``'s order; new reviews emit ``review.submitted``, and
    a review of 1 or 2 stars ``feedback.negative`` with a note to the support team (once per
    review, whatever its edits; ``support`` None: from the environment).

    Each text is moderated (``hold_reasons``): held ones are pending, others published at
    once when ``review_auto_publish`` is on. An edit of a published review is moderated again.
    A published review earns ``loyalty``'s ``review_reward`` once per product and customer.
    """
    support = support or load_support_settings()
    offered: Mapping[str, ReviewableProduct] = {p.key: p for p in target.products}
    saved: list[ProductReview] = []
    refused: dict[str, str] = {}
    name = display_name.strip()[:NAME_LIMIT] or default_display_name(target.customer)
    for answer in answers:
        product = offered.get(answer.product_key)
        if product is None:
            refused[answer.product_key] = "not a product of this order"
            continue
        if not product.editable:
            refused[answer.product_key] = "the time to edit this review is over"
            continue
        title, body = answer.title.strip()[:TITLE_LIMIT], answer.body.strip()[:BODY_LIMIT]
        reasons = hold_reasons(f"{title}\n{body}\n{name}", settings.blocked_words)
        status = (
            ReviewStatus.PUBLISHED
            if not reasons and settings.review_auto_publish
            else ReviewStatus.PENDING
        )
        review = product.review
        if review is None:
            # A concurrent first save of the same product from another tab loses on the
            # unique key (order, product) and the request fails: the page asks to try again.
            review = ProductReview(
                source="page",
                shop=target.order.shop,
                customer_id=target.customer.id,
                order_id=target.order.id,
                touchpoint_id=target.touchpoint_id,
                product_key=product.key,
                product_title=product.title,
                verified_buyer=True,
                submitted_at=now,
            )
            session.add(review)
        review.rating = answer.rating
        review.title = title
        review.body = body
        review.display_name = name
        review.status = status
        review.held_because = "; ".join(reasons) or None
        review.moderated_by = None if reasons or not settings.review_auto_publish else "auto"
        review.moderated_at = None if reasons or not settings.review_auto_publish else now
        review.edited_at = now
        session.flush()
        if product.review is None:
            _emit_submitted(session, target.order, product, review)
        note_negative(
            session,
            kind="review",
            answer_id=review.id,
            score=review.rating,
            comment="\n".join(t for t in (title, body) if t) or None,
            customer=target.customer,
            order=target.order,
            support=support,
            now=now,
            product=product.title,
        )
        reward_published(session, review, now=now, config=loyalty)
        saved.append(review)
    return SaveOutcome(saved, refused)


def _emit_submitted(
    session: Session, order: Order, product: ReviewableProduct, review: ProductReview
) -> None:
    event = CanonicalEvent(
        type=EventType.REVIEW_SUBMITTED,
        occurred_at=review.submitted_at,
        order=OrderSnapshot(external_id=order.external_id, currency=NO_CURRENCY),
        review=Review(rating=review.rating, product_id=product.product_id),
    )
    add_to_inbox(
        session,
        InboxEntry.for_event(
            event,
            source=order.source,
            dedupe_key=f"review-page:{review.id}",
            topic="review.page",
            shop=order.shop or None,
        ),
    )
