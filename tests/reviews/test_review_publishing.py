"""Published reviews: the public JSON and the Google Product Reviews feed (both databases)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from click.testing import CliRunner
from review_links import review_link
from sqlalchemy import select

from postpurchase.cli import main
from postpurchase.reviews.models import ProductReview
from postpurchase.store.database import transaction
from postpurchase.store.models import Customer, Product

XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
# The elements of <review> in the order schema 2.3 sets, and which of them it requires.
REVIEW_ORDER = [
    "review_id",
    "reviewer",
    "review_timestamp",
    "title",
    "content",
    "pros",
    "cons",
    "review_url",
    "reviewer_images",
    "ratings",
    "products",
    "is_spam",
    "collection_method",
    "transaction_id",
]
REVIEW_REQUIRED = {"review_id", "reviewer", "review_timestamp", "content", "review_url",
                   "ratings", "products"}  # fmt: skip
PRODUCT_ORDER = ["product_ids", "product_name", "product_url"]


def _fields(page_html):
    return dict(re.findall(r'type="hidden" name="(product-\d+)" value="([^"]+)"', page_html))


def _review(client, reviewable, **answers):
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    response = client.post(link, data={**_fields(client.get(link).text), **answers})
    assert response.status_code == 200, response.text


def _with_a_second_buyer(store, reviewable):
    """Another customer's order of the same sweater, and its review request."""
    from fakes.fixtures import add_customer, add_order, add_touchpoint

    from postpurchase.store.models import Channel

    with transaction(store) as session:
        jonas = add_customer(session, first_name="Jonas", last_name="Becker")
        order = add_order(session, jonas)
        tp = add_touchpoint(
            session, jonas, order, "review_request", Channel.EMAIL, datetime.now(UTC)
        )
        session.add(
            Product(
                source="shopify",
                external_id="p-77",
                title="Merino Wool Crew Sweater",
                vendor="Northline",
                url="https://northline-outdoor.example/products/merino-crew",
                source_updated_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
        return {"customer": jonas.id, "touchpoint": tp.id}


def test_the_json_lists_published_reviews_with_averages_and_nothing_personal(
    client, store, reviewable
):
    second = _with_a_second_buyer(store, reviewable)
    _review(client, reviewable, **{"rating-0": "5", "body-0": "Warm and soft.", "rating-1": "4"})
    _review(client, second, **{"rating-0": "4", "title-0": "Good", "body-0": "Runs small."})
    _review(client, second, **{"rating-0": "4", "body-0": "Runs small, see www.x-deals.com"})

    listed = client.get("/reviews.json")
    one = client.get("/reviews.json", params={"product": "p-81"})

    assert listed.status_code == 200
    products = {p["product_id"]: p for p in listed.json()["products"]}
    # Jonas's edited review has a link: held, so not shown; Chloé's two are
    assert (products["p-77"]["review_count"], products["p-77"]["average_rating"]) == (1, "5.0")
    assert products["p-77"]["url"] == "https://northline-outdoor.example/products/merino-crew"
    assert products["p-81"]["reviews"][0]["name"] == "Chloé M."
    assert [p["product_id"] for p in one.json()["products"]] == ["p-81"]
    with store() as session:
        emails = session.execute(select(Customer.email)).scalars().all()
    for text in (listed.text, client.get("/reviews/google-product-reviews.xml").text):
        assert "Martin" not in text and "Becker" not in text
        assert not any(email in text for email in emails)
        assert "customer" not in text and "order" not in text


def test_averages_follow_moderation_and_etags_revalidate(client, store, reviewable):
    second = _with_a_second_buyer(store, reviewable)
    _review(client, reviewable, **{"rating-0": "5", "body-0": "Warm and soft."})
    _review(client, second, **{"rating-0": "2", "body-0": "Itchy. Call 0612345678"})
    first = client.get("/reviews.json")
    etag = first.headers["etag"]

    same = client.get("/reviews.json", headers={"If-None-Match": etag})
    with store() as session:
        held = session.execute(
            select(ProductReview.id).where(ProductReview.status == "pending")
        ).scalar_one()
    CliRunner().invoke(main, ["reviews", "approve", str(held)], catch_exceptions=False)
    changed = client.get("/reviews.json", headers={"If-None-Match": etag})

    assert "public" in first.headers["cache-control"]
    assert same.status_code == 304 and same.content == b""
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    sweater = changed.json()["products"][0]
    assert (sweater["review_count"], sweater["average_rating"]) == (2, "3.5")


def test_the_google_feed_has_the_documented_structure(client, store, reviewable):
    second = _with_a_second_buyer(store, reviewable)
    _review(
        client,
        reviewable,
        **{"rating-0": "5", "title-0": "Warm", "body-0": "Soft & warm <really>.", "rating-1": "3"},
    )
    _review(client, second, **{"rating-0": "4", "body-0": "Runs a little small."})

    response = client.get("/reviews/google-product-reviews.xml")
    again = client.get(
        "/reviews/google-product-reviews.xml", headers={"If-None-Match": response.headers["etag"]}
    )

    assert response.status_code == 200 and again.status_code == 304
    assert response.headers["content-type"].startswith("application/xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == "feed"
    assert feed.get(f"{XSI}noNamespaceSchemaLocation") == (
        "http://www.google.com/shopping/reviews/schema/product/2.3/product_reviews.xsd"
    )
    assert [child.tag for child in feed] == ["version", "publisher", "reviews"]
    assert feed.findtext("version") == "2.3"
    assert feed.findtext("publisher/name") == "Northline Outdoor"
    reviews = feed.findall("reviews/review")
    # the beanie's stars-only review has no content: Google requires one, so it is left out
    assert len(reviews) == 2
    for review in reviews:
        tags = [child.tag for child in review]
        assert REVIEW_REQUIRED <= set(tags), tags
        assert tags == sorted(tags, key=REVIEW_ORDER.index), tags
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", review.findtext("review_timestamp"))
        assert review.find("reviewer/name").get("is_anonymous") == "false"
        assert review.find("review_url").get("type") in {"singleton", "group"}
        overall = review.find("ratings/overall")
        assert (overall.get("min"), overall.get("max")) == ("1", "5")
        assert 1 <= float(overall.text) <= 5
        for product in review.findall("products/product"):
            names = [child.tag for child in product]
            assert names == sorted(names, key=PRODUCT_ORDER.index) and "product_url" in names
        assert review.findtext("collection_method") == "post_fulfillment"
    ids = [r.findtext("review_id") for r in reviews]
    assert len(set(ids)) == len(ids)
    assert reviews[0].findtext("content") == "Soft & warm <really>."
    assert reviews[1].findtext("products/product/product_ids/brands/brand") == "Northline"


def test_reading_published_reviews_changes_nothing(client, store, reviewable):
    _review(client, reviewable, **{"rating-0": "5", "body-0": "Warm."})
    with store() as session:
        before = [(r.id, r.status, r.edited_at) for r in session.scalars(select(ProductReview))]

    client.get("/reviews.json")
    client.get("/reviews/google-product-reviews.xml")

    with store() as session:
        after = [(r.id, r.status, r.edited_at) for r in session.scalars(select(ProductReview))]
    assert before == after
    assert json.loads(client.get("/reviews.json").text)["products"][0]["review_count"] == 1
