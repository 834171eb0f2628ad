"""The hosted review page, driven through HTTP like a browser (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from fakes.fixtures import add_customer, add_touchpoint
from review_links import SENT, review_link
from sqlalchemy import func, select

from postpurchase.campaigns.config import load_campaigns
from postpurchase.processing.drain import process_inbox
from postpurchase.reviews.models import ProductReview, ReviewStatus
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    InboxEvent,
    Order,
    Touchpoint,
    TouchpointStatus,
)


def _count(store, model):
    with store() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def _form_fields(page_html: str) -> dict[str, str]:
    """The hidden product fields of the page, as a browser would send them back."""
    return dict(re.findall(r'type="hidden" name="(product-\d+)" value="([^"]+)"', page_html))


def test_the_page_offers_each_product_once_and_a_get_stores_nothing(client, store, reviewable):
    link = review_link(reviewable["customer"], reviewable["touchpoint"])

    page = client.get(link)
    client.get(link)

    assert page.status_code == 200
    assert "width=device-width" in page.text and 'method="post"' in page.text
    # the sweater in two sizes is one product to review; the beanie the other
    assert _form_fields(page.text) == {"product-0": "id:p-77", "product-1": "id:p-81"}
    assert page.text.count('name="rating-0"') == 5
    assert 'value="Chloé M."' in page.text  # the name shown by default: no last name
    assert _count(store, ProductReview) == 0 and _count(store, InboxEvent) == 0


def test_a_posted_review_is_stored_as_a_verified_buyer_and_emits_review_submitted(
    client, store, reviewable
):
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    fields = _form_fields(client.get(link).text)

    done = client.post(
        link,
        data={
            **fields,
            "rating-0": "5",
            "title-0": "Warm without itching",
            "body-0": "Wore it on a windy hike in the Vosges: warm, soft, no itch at all.",
            "rating-1": "",  # the beanie left without stars: not reviewed
            "display_name": "Chloé from Lyon",
        },
    )

    assert done.status_code == 200 and "Thank you for your review!" in done.text
    with store() as session:
        review = session.execute(select(ProductReview)).scalar_one()
        event = session.execute(select(InboxEvent)).scalar_one()
    assert (review.product_key, review.rating, review.order_id, review.customer_id) == (
        "id:p-77",
        5,
        reviewable["order"],
        reviewable["customer"],
    )
    assert review.verified_buyer and review.status is ReviewStatus.PUBLISHED
    assert review.display_name == "Chloé from Lyon"
    assert event.event_type == "review.submitted" and event.source == "shopify"
    assert event.payload["review"] == {"rating": 5, "product_id": "p-77"}


def test_an_edit_replaces_the_review_and_emits_nothing_more(client, store, reviewable):
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    fields = _form_fields(client.get(link).text)
    client.post(link, data={**fields, "rating-0": "2", "body-0": "Shrank in the wash."})

    edited = client.post(
        link,
        data={**fields, "rating-0": "4", "body-0": "Shrank a bit; the shop replaced it quickly."},
    )
    page = client.get(link)

    assert edited.status_code == 200
    with store() as session:
        review = session.execute(select(ProductReview)).scalar_one()
    assert (review.rating, review.body) == (4, "Shrank a bit; the shop replaced it quickly.")
    with store() as session:
        events = session.execute(select(InboxEvent.event_type)).scalars().all()
    # one review.submitted; the first answer's 2 stars were a complaint, told once
    assert sorted(events) == ["feedback.negative", "review.submitted"]
    assert "Shrank a bit; the shop replaced it quickly." in page.text  # the form shows it


def test_no_edit_after_the_edit_window(app_client, store, reviewable):
    client = app_client(review_edit_days=0)
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    fields = _form_fields(client.get(link).text)
    client.post(link, data={**fields, "rating-0": "5"})

    late = client.post(link, data={**fields, "rating-0": "1"})
    page = client.get(link)

    assert late.status_code == 409 and "time to edit" in late.text
    assert "days to edit it are over" in page.text
    with store() as session:
        assert session.execute(select(ProductReview.rating)).scalar_one() == 5


def test_links_of_another_customer_or_forged_ones_store_nothing(client, store, reviewable):
    with transaction(store) as session:
        bert = add_customer(session)
        not_an_order = add_touchpoint(session, bert, None, "win_back", Channel.EMAIL, SENT)
    genuine = review_link(reviewable["customer"], reviewable["touchpoint"])
    fields = _form_fields(client.get(genuine).text)
    form = {**fields, "rating-0": "1"}

    forged = client.post(genuine[:-3] + "AAA", data=form)
    moved = client.post(review_link(bert.id, reviewable["touchpoint"]), data=form)
    no_order = client.post(review_link(bert.id, not_an_order.id), data=form)
    foreign_product = client.post(genuine, data={"product-0": "id:p-999", "rating-0": "5"})
    bad_rating = client.post(genuine, data={**fields, "rating-0": "6"})

    assert forged.status_code == 400
    assert moved.status_code == no_order.status_code == 404
    assert foreign_product.status_code == 409
    assert bad_rating.status_code == 422
    assert _count(store, ProductReview) == 0 and _count(store, InboxEvent) == 0


def test_review_submitted_from_the_page_cancels_the_reminder(client, store, reviewable):
    with transaction(store) as session:
        reminder = Touchpoint(
            subject_key=f"order:{reviewable['order']}",
            campaign_id="review_request",
            step=1,
            channel=Channel.EMAIL,
            customer_id=reviewable["customer"],
            order_id=reviewable["order"],
            due_at=SENT + timedelta(days=5),
        )
        session.add(reminder)
        session.flush()
        reminder_id = reminder.id
    link = review_link(reviewable["customer"], reviewable["touchpoint"])
    client.post(link, data={**_form_fields(client.get(link).text), "rating-1": "4"})

    summary = process_inbox(
        store,
        load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
        worker="test",
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: SENT + timedelta(days=1),
    )

    assert summary.failed == 0
    with store() as session:
        assert session.get(Order, reviewable["order"]).reviewed_at is not None
        status = session.get(Touchpoint, reminder_id).status
    assert status is TouchpointStatus.CANCELLED
