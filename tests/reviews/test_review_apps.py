"""Judge.me and Yotpo review webhooks become review.submitted events (SQLite and PostgreSQL).

Payload shapes follow the services' documented examples (Judge.me ``review/created``;
Yotpo's ``review_create`` object structure).
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from postpurchase.store.models import InboxEvent

JUDGEME_SECRET = "jdgm-oauth-app-secret"
YOTPO_TOKEN = "yotpo-url-secret-9c1e"
YOTPO_APP_KEY = "StmYvzud6bHLtosn5k5DoGoA7M0kghzjMdH25DST"


@pytest.fixture
def apps(app_client):
    """The app with both review services configured."""
    return app_client(
        judgeme_webhook_secret=JUDGEME_SECRET,
        yotpo_webhook_token=YOTPO_TOKEN,
        yotpo_app_key=YOTPO_APP_KEY,
    )


def _judgeme(review_id, email, product="p-81", rating=5):
    return {
        "review": {
            "id": review_id,
            "title": "Cosy",
            "body": "Warm beanie, good stitching.",
            "rating": rating,
            "product_external_id": product,
            "product_title": "Ribbed Beanie",
            "reviewer": {"id": 55, "name": "Chloé Martin", "email": email},
            "created_at": "2026-11-28T09:15:00.000+00:00",
        }
    }


def _signed(body):
    raw = json.dumps(body).encode()
    mac = hmac.new(JUDGEME_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"JUDGEME-HMAC-SHA256": mac, "Content-Type": "application/json"}


def _events(store):
    with store() as session:
        return session.execute(
            select(InboxEvent.dedupe_key, InboxEvent.subject_id, InboxEvent.payload)
        ).all()


def test_a_signed_judgeme_review_is_a_review_submitted_of_the_buyers_order(apps, store, reviewable):
    with store() as session:
        from postpurchase.store.models import Customer, Order

        email = session.get(Customer, reviewable["customer"]).email
        order_id = session.get(Order, reviewable["order"]).external_id
    raw, headers = _signed(_judgeme(3349801, email.upper()))

    first = apps.post("/webhooks/judgeme", content=raw, headers=headers)
    again = apps.post("/webhooks/judgeme", content=raw, headers=headers)

    assert first.json() == {"result": "stored"} and again.json() == {"result": "duplicate"}
    [(key, subject, payload)] = _events(store)
    assert (key, subject) == ("judgeme:3349801", order_id)
    assert payload["type"] == "review.submitted"
    assert payload["review"] == {"rating": 5, "product_id": "p-81"}


def test_forged_or_unmatched_judgeme_reviews_store_nothing(apps, store, reviewable):
    raw, headers = _signed(_judgeme(1, "someone.else@example.org"))
    forged = dict(headers, **{"JUDGEME-HMAC-SHA256": "0" * 64})

    assert apps.post("/webhooks/judgeme", content=raw, headers=forged).status_code == 401
    assert apps.post("/webhooks/judgeme", content=raw).status_code == 401
    unmatched = apps.post("/webhooks/judgeme", content=raw, headers=headers)
    assert unmatched.status_code == 200 and unmatched.json() == {"result": "no matching order"}
    junk, junk_headers = _signed({"hello": "world"})
    assert apps.post("/webhooks/judgeme", content=junk, headers=junk_headers).status_code == 400
    assert _events(store) == []


def test_a_yotpo_review_naming_the_order_is_stored_once(apps, store, reviewable):
    with store() as session:
        from postpurchase.store.models import Order

        order_id = session.get(Order, reviewable["order"]).external_id
    body = {
        "event": "review_create",
        "data": {
            "id": 219,
            "title": "Review Title",
            "content": "Review Content",
            "score": "2",
            "app_key": YOTPO_APP_KEY,
            "created_at": "2026-11-28 14:12:13 UTC",
            "verified_buyer": "true",
            "order": {"id": 523556, "external_id": order_id},
            "customer_email": "not.the.buyer@example.org",
        },
    }

    wrong_url = apps.post("/webhooks/yotpo/guess", json=body)
    other_shop = apps.post(
        f"/webhooks/yotpo/{YOTPO_TOKEN}",
        json={**body, "data": {**body["data"], "app_key": "another-shop"}},
    )
    stored = apps.post(f"/webhooks/yotpo/{YOTPO_TOKEN}", json=body)
    updated = apps.post(f"/webhooks/yotpo/{YOTPO_TOKEN}", json={**body, "event": "review_updated"})

    assert wrong_url.status_code == other_shop.status_code == 401
    assert stored.json() == {"result": "stored"} and updated.json() == {"result": "duplicate"}
    [(key, subject, payload)] = _events(store)
    assert (key, subject, payload["review"]["rating"]) == ("yotpo:219", order_id, 2)


def test_without_configuration_the_routes_ask_to_retry(client):
    assert client.post("/webhooks/judgeme", content=b"{}").status_code == 503
    assert client.post("/webhooks/yotpo/x", content=b"{}").status_code == 503


def test_refusals_are_counted_without_the_url_secret(apps, store):
    from postpurchase.store.models import RejectedWebhook

    apps.post("/webhooks/judgeme", content=b'{"review": {}}', headers={"JUDGEME-HMAC-SHA256": "00"})
    apps.post("/webhooks/yotpo/a-guessed-token", json={"data": {"id": 1}})

    with store() as session:
        rows = session.execute(select(RejectedWebhook)).scalars().all()
    routes = sorted(str(getattr(r, "route", "")) for r in rows)
    assert routes == ["/webhooks/judgeme", "/webhooks/yotpo/{token}"]
    assert not any("a-guessed-token" in repr(vars(r)) for r in rows)
