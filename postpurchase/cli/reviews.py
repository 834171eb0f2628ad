"""``postpurchase reviews``: the moderation queue, and a person's decision on each review."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from postpurchase.cli.db import open_database

if TYPE_CHECKING:
    from postpurchase.reviews.models import ProductReview

_STATUSES = ["pending", "published", "rejected", "all"]


@click.group()
def reviews() -> None:
    """Reviews customers wrote on the review page (or on Judge.me / Yotpo)."""


@reviews.command("list")
@click.option(
    "--status",
    type=click.Choice(_STATUSES),
    default="pending",
    show_default=True,
    help="Which reviews: the moderation queue by default.",
)
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def reviews_list(status: str, limit: int, fmt: str) -> None:
    """Reviews in STATUS, oldest first, with why each held one was held."""
    from postpurchase.reviews.models import ReviewStatus
    from postpurchase.reviews.moderation import queue
    from postpurchase.store.database import session_factory

    engine = open_database()
    try:
        with session_factory(engine)() as session:
            wanted = None if status == "all" else ReviewStatus(status)
            rows = [_as_dict(r) for r in queue(session, status=wanted, limit=limit)]
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"no {status} reviews" if status != "all" else "no reviews")
    for row in rows:
        held = f" held: {row['held_because']}" if row["held_because"] else ""
        click.echo(
            f"#{row['id']} [{row['status']}] {row['rating']}/5 {row['product_title']} "
            f"by {row['display_name']} ({str(row['submitted_at'])[:16]}){held}"
        )
        for text in (row["title"], row["body"]):
            if text:
                click.echo(f"    {text}")


@reviews.command("approve")
@click.argument("review_ids", nargs=-1, type=int, required=True)
@click.option("--by", default="cli", show_default=True, help="Who decided (kept on the review).")
def reviews_approve(review_ids: tuple[int, ...], by: str) -> None:
    """Publish the reviews REVIEW_IDS."""
    _decide(review_ids, publish=True, by=by)


@reviews.command("reject")
@click.argument("review_ids", nargs=-1, type=int, required=True)
@click.option("--by", default="cli", show_default=True, help="Who decided (kept on the review).")
def reviews_reject(review_ids: tuple[int, ...], by: str) -> None:
    """Reject the reviews REVIEW_IDS: they are never shown."""
    _decide(review_ids, publish=False, by=by)


def _decide(review_ids: tuple[int, ...], *, publish: bool, by: str) -> None:
    from postpurchase.exceptions import InvalidInput
    from postpurchase.reviews.moderation import NoSuchReview, decide
    from postpurchase.reviews.rewards import reward_published, shop_loyalty_config
    from postpurchase.settings import load_settings
    from postpurchase.store.database import session_factory, transaction

    loyalty = shop_loyalty_config(load_settings())
    now = datetime.now(UTC)
    engine = open_database()
    try:
        with transaction(session_factory(engine)) as session:
            for review_id in review_ids:
                try:
                    review = decide(session, review_id=review_id, publish=publish, by=by, now=now)
                except NoSuchReview:
                    raise InvalidInput(f"no review #{review_id}: nothing was changed") from None
                points = reward_published(session, review, now=now, config=loyalty)
                earned = f" (+{points} points)" if points else ""
                click.echo(f"#{review.id} {review.status.value}{earned}")
    finally:
        engine.dispose()


def _as_dict(review: ProductReview) -> dict[str, object]:
    return {
        "id": review.id,
        "status": review.status.value,
        "source": review.source,
        "order_id": review.order_id,
        "product_key": review.product_key,
        "product_title": review.product_title,
        "rating": review.rating,
        "title": review.title,
        "body": review.body,
        "display_name": review.display_name,
        "verified_buyer": review.verified_buyer,
        "held_because": review.held_because,
        "submitted_at": review.submitted_at.isoformat(),
        "moderated_by": review.moderated_by,
    }
