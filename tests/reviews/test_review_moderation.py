"""Moderation: what is held for a person, and the CLI that decides (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from review_links import review_link
from sqlalchemy import select

from postpurchase.cli import main
from postpurchase.reviews.models import ProductReview, ReviewStatus
from postpurchase.reviews.moderation import hold_reasons


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Great, see https://cheap-bags.example.net/deal", "contains a link"),
        ("more at www.outlet-deals.com", "contains a link"),
        ("cheapbags.shop has it for less", "contains a link"),
        ("mail me: jo.bauer@example.org", "contains an email address"),
        ("write to jo at gmail dot com", "contains an email address"),
        ("call me on +33 6 12 34 56 78", "contains a phone number"),
        ("ring 415-555-0134 for a discount", "contains a phone number"),
        ("What a rip-off, total scam", "contains the blocked word 'scam'"),
    ],
)
def test_links_contacts_and_blocked_words_are_held(text, reason):
    assert reason in hold_reasons(text, ["scam", "rip off"])


@pytest.mark.parametrize(
    "text",
    [
        "Warm, soft, true to size. Bought a second one in 2026.",
        "Fits well.It is soft and 100% merino, size 42 EU.",
        "Not a scammer's product at all",  # a blocked word inside another word is not it
    ],
)
def test_ordinary_reviews_are_not_held(text):
    assert hold_reasons(text, ["scam"]) == []


def _fields(page_html):
    return dict(re.findall(r'type="hidden" name="(product-\d+)" value="([^"]+)"', page_html))


def test_held_review_waits_then_the_cli_publishes_or_rejects(app_client, store, reviewable):
    client = app_client(review_blocked_words="scam, rip off")
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    fields = _fields(client.get(link).text)
    answer = client.post(
        link,
        data={
            **fields,
            "rating-0": "1",
            "body-0": "Felt like a scam, call me on 06 12 34 56 78",
            "rating-1": "5",
            "body-1": "Lovely beanie, warm and soft.",
        },
    )
    runner = CliRunner()

    queued = runner.invoke(main, ["reviews", "list", "--format", "json"], catch_exceptions=False)

    assert answer.status_code == 200 and "once a person has read it" in answer.text
    assert queued.exit_code == 0, queued.output
    pending = json.loads(queued.output)
    assert [(r["product_key"], r["rating"]) for r in pending] == [("id:p-77", 1)]
    assert pending[0]["held_because"] == (
        "contains a phone number; contains the blocked word 'scam'"
    )
    assert "email" not in pending[0]  # no contact details in the queue's JSON
    held_id = pending[0]["id"]

    approved = runner.invoke(main, ["reviews", "approve", str(held_id), "--by", "nadia"])
    assert approved.exit_code == 0 and approved.output.strip() == f"#{held_id} published"
    rejected = runner.invoke(main, ["reviews", "reject", str(held_id)])
    missing = runner.invoke(main, ["reviews", "reject", str(held_id), "999999"])
    text_queue = runner.invoke(main, ["reviews", "list"])

    assert rejected.exit_code == 0
    assert missing.exit_code == 2 and "no review #999999" in missing.output
    assert text_queue.output.strip() == "no pending reviews"
    with store() as session:
        rows = dict(session.execute(select(ProductReview.product_key, ProductReview.status)).all())
        decided = session.get(ProductReview, held_id)
    # the rejection stands: the failed command (an unknown id) changed nothing
    assert rows == {"id:p-77": ReviewStatus.REJECTED, "id:p-81": ReviewStatus.PUBLISHED}
    assert decided.moderated_by == "cli" and decided.moderated_at is not None


def test_with_auto_publish_off_every_review_waits(app_client, store, reviewable):
    client = app_client(review_auto_publish=False)
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    client.post(link, data={**_fields(client.get(link).text), "rating-0": "5"})

    with store() as session:
        review = session.execute(select(ProductReview)).scalar_one()
    assert review.status is ReviewStatus.PENDING and review.held_because is None
