"""Loyalty points for a published review: once per product and customer, through the ledger."""

from __future__ import annotations

import re

from click.testing import CliRunner
from review_links import review_link
from sqlalchemy import select

from postpurchase.cli import main
from postpurchase.loyalty.ledger import balance
from postpurchase.reviews.models import ProductReview
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.models import LoyaltyLedgerEntry


def _loyalty_with_review_reward(app_client, tmp_path, monkeypatch, points=50):
    """The app with a loyalty file that rewards reviews (the command line reads it too)."""
    path = tmp_path / "loyalty.yaml"
    shipped = (PROJECT_ROOT / "config" / "loyalty.yaml").read_text()
    path.write_text(shipped + f"\nreview_reward:\n  points: {points}\n")
    monkeypatch.setenv("POSTPURCHASE_LOYALTY_CONFIG", str(path))
    return app_client(loyalty_config=path)


def _fields(page_html):
    return dict(re.findall(r'type="hidden" name="(product-\d+)" value="([^"]+)"', page_html))


def test_a_published_review_earns_points_once_per_product(
    app_client, store, reviewable, tmp_path, monkeypatch
):
    client = _loyalty_with_review_reward(app_client, tmp_path, monkeypatch)
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    fields = _fields(client.get(link).text)

    client.post(link, data={**fields, "rating-0": "5", "body-0": "Warm."})
    client.post(link, data={**fields, "rating-0": "4", "body-0": "Warm, a bit short."})
    # the beanie's review is held for its phone number: nothing until a person publishes it
    client.post(link, data={**fields, "rating-1": "5", "body-1": "Call 06 12 34 56 78"})

    with store() as session:
        assert balance(session, reviewable["customer"]) == 50
        held = session.execute(
            select(ProductReview.id).where(ProductReview.product_key == "id:p-81")
        ).scalar_one()
    runner = CliRunner()
    approved = runner.invoke(main, ["reviews", "approve", str(held)], catch_exceptions=False)
    again = runner.invoke(main, ["reviews", "approve", str(held)], catch_exceptions=False)

    assert approved.output.strip() == f"#{held} published (+50 points)"
    assert again.output.strip() == f"#{held} published"
    with store() as session:
        causes = session.execute(select(LoyaltyLedgerEntry.cause)).scalars().all()
        assert balance(session, reviewable["customer"]) == 100
    assert sorted(causes) == [
        f"review:{reviewable['customer']}:id:p-77",
        f"review:{reviewable['customer']}:id:p-81",
    ]


def test_rejected_or_held_reviews_earn_nothing(
    app_client, store, reviewable, tmp_path, monkeypatch
):
    client = _loyalty_with_review_reward(app_client, tmp_path, monkeypatch)
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    client.post(
        link, data={**_fields(client.get(link).text), "rating-0": "5", "body-0": "www.x.com"}
    )
    with store() as session:
        held = session.execute(select(ProductReview.id)).scalar_one()

    CliRunner().invoke(main, ["reviews", "reject", str(held)], catch_exceptions=False)

    with store() as session:
        assert balance(session, reviewable["customer"]) == 0


def test_without_a_review_reward_no_points(client, store, reviewable):
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    client.post(link, data={**_fields(client.get(link).text), "rating-0": "5"})

    with store() as session:
        assert balance(session, reviewable["customer"]) == 0
