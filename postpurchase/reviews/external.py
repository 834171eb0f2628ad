"""Reviews left on Judge.me or Yotpo, as their webhooks report them, become
``review.submitted`` events, so no one is asked again for an order they reviewed there.

How each service proves a delivery is its own:

- Judge.me signs the raw body: header ``JUDGEME-HMAC-SHA256`` is the hex HMAC-SHA256 of it,
  keyed with the OAuth app's secret, or the shop's private API token for a webhook created
  with that token (``POSTPURCHASE_JUDGEME_WEBHOOK_SECRET``).
- Yotpo's reviews webhooks carry no signature (none is documented): the URL holds a secret
  of ours (``/webhooks/yotpo/{token}``, ``POSTPURCHASE_YOTPO_WEBHOOK_TOKEN``), compared in
  constant time, and the body's ``data.app_key`` must be the shop's
  (``POSTPURCHASE_YOTPO_APP_KEY``).

The review is matched to an order we know: the order the service names (Yotpo's
``external_order_id`` / ``order.external_id``), else the reviewer's most recent order of
that product (by email). The services name no shop: a match in several shops is not guessed
at. Unmatched reviews are acknowledged and ignored: they concern no order of ours. One
inbox row per service review (``judgeme:<id>``, ``yotpo:<id>``), so a redelivery or a
``review_updated`` changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.events import NO_CURRENCY, CanonicalEvent, EventType, OrderSnapshot, Review
from postpurchase.inbox import InboxEntry, add_to_inbox
from postpurchase.store.models import Customer, Order, OrderItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExternalReview:
    service: str  # judgeme, yotpo
    review_id: str
    rating: int | None
    product_id: str | None
    email: str | None
    order_id: str | None  # the platform's order id, when the service says it
    created_at: datetime | None


def judgeme_signature_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.strip().lower())


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip()[:64] or None


def _rating(value: Any) -> int | None:
    try:
        rating = int(str(value))
    except (TypeError, ValueError):
        return None
    return rating if 1 <= rating <= 5 else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_judgeme(body: Any) -> ExternalReview | None:
    """The review of a Judge.me ``review/created`` or ``review/updated`` body."""
    review = body.get("review") if isinstance(body, dict) else None
    if not isinstance(review, dict) or _text(review.get("id")) is None:
        return None
    found = review.get("reviewer")
    reviewer: dict[str, Any] = found if isinstance(found, dict) else {}
    return ExternalReview(
        service="judgeme",
        review_id=str(_text(review.get("id"))),
        rating=_rating(review.get("rating")),
        product_id=_text(review.get("product_external_id")),
        email=(_text(reviewer.get("email")) or "").lower() or None,
        order_id=_text(review.get("order_external_id")),
        created_at=_time(review.get("created_at")),
    )


def parse_yotpo(body: Any) -> tuple[ExternalReview | None, str | None]:
    """The review of a Yotpo ``review_create``/``review_updated`` body, and its app key."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or _text(data.get("id")) is None:
        return None, None
    named = data.get("order")
    order: dict[str, Any] = named if isinstance(named, dict) else {}
    return (
        ExternalReview(
            service="yotpo",
            review_id=str(_text(data.get("id"))),
            rating=_rating(data.get("score")),
            product_id=_text(data.get("external_product_id") or data.get("product_id")),
            email=(_text(data.get("customer_email")) or "").lower() or None,
            order_id=_text(data.get("external_order_id") or order.get("external_id")),
            created_at=_time(data.get("created_at")),
        ),
        _text(data.get("app_key")),
    )


def _one_shop(orders: Sequence[Order]) -> Order | None:
    """The first of ``orders`` when they are all of one shop. The review services' webhooks
    name no shop: an order id or email found in several shops is not guessed at."""
    if len({order.shop for order in orders}) > 1:
        log.warning("a review matches orders of several shops; it is left unmatched")
        return None
    return orders[0] if orders else None


def _matching_order(session: Session, review: ExternalReview) -> Order | None:
    if review.order_id is not None:
        found = _one_shop(
            session.execute(
                select(Order).where(Order.external_id == review.order_id).order_by(Order.id)
            )
            .scalars()
            .all()
        )
        if found is not None:
            return found
    if review.email is None:
        return None
    statement = (
        select(Order)
        .join(Customer, Customer.id == Order.customer_id)
        .where(func.lower(Customer.email) == review.email)
        .order_by(Order.placed_at.desc().nulls_last(), Order.id.desc())
    )
    if review.product_id is not None:
        statement = statement.where(
            select(OrderItem.id)
            .where(OrderItem.order_id == Order.id, OrderItem.product_id == review.product_id)
            .exists()
        )
    latest = session.execute(statement.limit(1)).scalars().first()
    if latest is None:
        return None
    elsewhere = session.execute(statement.where(Order.shop != latest.shop).limit(1)).scalars().all()
    return _one_shop([latest, *elsewhere])


def record_external_review(session: Session, review: ExternalReview, *, now: datetime) -> str:
    """Write the ``review.submitted`` event for ``review``; returns "stored", "duplicate" or
    "no matching order"."""
    order = _matching_order(session, review)
    if order is None:
        return "no matching order"
    event = CanonicalEvent(
        type=EventType.REVIEW_SUBMITTED,
        occurred_at=review.created_at or now,
        order=OrderSnapshot(external_id=order.external_id, currency=NO_CURRENCY),
        review=Review(rating=review.rating, product_id=review.product_id),
    )
    stored = add_to_inbox(
        session,
        InboxEntry.for_event(
            event,
            source=order.source,
            dedupe_key=f"{review.service}:{review.review_id}",
            topic=f"{review.service}.review",
            shop=order.shop or None,
        ),
    )
    return "stored" if stored is not None else "duplicate"
