"""Product webhooks through the real app (signed), the inbox and processing, into the
catalogue: what each platform's genuine payload becomes, and how late, repeated and deleted
products are handled."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from event_journeys import at
from genuine_payloads import genuine
from sqlalchemy import select

from postpurchase.store.models import ClaimStatus, InboxEvent, Product

SHOPIFY_PRODUCT = "shopify/products_create_docs.json"
WOO_PRODUCT = "woocommerce/product_premium_quality_docs.json"


def products(store) -> dict[str, Product]:
    with store() as session:
        return {p.external_id: p for p in session.scalars(select(Product))}


def test_a_shopify_product_webhook_becomes_a_catalogue_entry(send, store, drain):
    response = send.shopify("products/create", genuine(SHOPIFY_PRODUCT))
    assert response.status_code == 202, response.text

    summary = drain()

    assert summary.events == {"product.updated": 1}
    assert summary.failed == 0
    shirt = products(store)["788032119674292922"]  # beyond 2**53: kept digit for digit
    assert (shirt.source, shirt.title, shirt.product_type, shirt.vendor, shirt.handle) == (
        "shopify",
        "Example T-Shirt",
        "Shirts",
        "Acme",
        "example-t-shirt",
    )
    assert shirt.tags == ["example", "mens", "t-shirt"]
    assert shirt.collections == []  # Shopify's product webhooks name no collections
    assert shirt.url == "https://northline-outdoor.myshopify.com/products/example-t-shirt"
    assert shirt.image_url is None  # the documented example has no image
    assert shirt.source_updated_at == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    assert shirt.deleted_at is None


def test_an_admin_api_product_with_images_keeps_the_first_image(send, store, drain):
    ipod = genuine("shopify/admin_api_product_ipod_nano.json")["product"]
    assert send.shopify("products/update", ipod).status_code == 202
    drain()

    stored = products(store)["632910392"]
    assert (
        stored.image_url == "http://static.shopify.com/s/files/1/6909/3384/products/ipod-nano.png?0"
    )
    assert stored.tags == ["Emotive", "Flash Memory", "MP3", "Music"]
    assert stored.product_type == "Cult Products"


def test_newest_updated_at_wins_whatever_the_order_of_arrival(send, store, drain):
    older = genuine(SHOPIFY_PRODUCT)
    newer = copy.deepcopy(older)
    # the shop tagged it later: the newer one arrives first, in its own batch, then the older
    newer["updated_at"] = "2022-03-01T09:00:00-05:00"
    newer["tags"] = "example, mens, t-shirt, sale"
    assert send.shopify("products/update", newer).status_code == 202
    drain()
    assert send.shopify("products/create", older).status_code == 202
    drain()

    shirt = products(store)["788032119674292922"]
    assert shirt.tags == ["example", "mens", "t-shirt", "sale"]
    assert shirt.source_updated_at == datetime(2022, 3, 1, 14, 0, tzinfo=UTC)


def test_both_versions_in_one_batch_leave_the_newest(send, store, drain):
    older = genuine(SHOPIFY_PRODUCT)
    newer = copy.deepcopy(older)
    newer["updated_at"] = "2022-03-01T09:00:00-05:00"
    newer["product_type"] = "Tops"
    send.shopify("products/update", newer)
    send.shopify("products/create", older)

    drain()

    assert products(store)["788032119674292922"].product_type == "Tops"


def test_a_duplicate_delivery_is_stored_once(send, store):
    body = genuine(SHOPIFY_PRODUCT)
    assert send.shopify("products/create", body, event_id="ev-1").status_code == 202
    again = send.shopify("products/create", body, event_id="ev-1")
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})


def test_a_deleted_product_is_marked_and_kept(send, store, drain):
    send.shopify("products/create", genuine(SHOPIFY_PRODUCT))
    drain()
    response = send.shopify("products/delete", genuine("shopify/products_delete_docs.json"))
    assert response.status_code == 202
    drain()

    shirt = products(store)["788032119674292922"]
    # dated by X-Shopify-Triggered-At: a delete carries no time of its own
    assert shirt.deleted_at == datetime(2026, 11, 20, 14, 14, 5, 123456, tzinfo=UTC)
    assert (shirt.product_type, shirt.tags) == ("Shirts", ["example", "mens", "t-shirt"])

    # an update written before the deletion, delivered late, does not bring it back
    send.shopify("products/update", genuine(SHOPIFY_PRODUCT), event_id="late")
    drain()
    assert products(store)["788032119674292922"].deleted_at is not None


def test_a_woocommerce_product_webhook_keeps_categories_tags_and_permalink(send, store, drain):
    response = send.woocommerce("product.created", genuine(WOO_PRODUCT))
    assert response.status_code == 202, response.text

    drain()

    shirt = products(store)["794"]
    assert (shirt.source, shirt.title, shirt.product_type, shirt.handle) == (
        "woocommerce",
        "Premium Quality",
        "Clothing",  # the first category
        "premium-quality-19",
    )
    assert shirt.collections == ["Clothing", "T-shirts"]
    assert shirt.tags == []
    assert shirt.url == "https://example.com/product/premium-quality-19/"
    assert shirt.image_url == "https://example.com/wp-content/uploads/2017/03/T_2_front-4.jpg"
    assert shirt.source_updated_at == datetime(2017, 3, 23, 20, 1, 14, tzinfo=UTC)


def test_woocommerce_delete_and_restore(send, store, drain, clock):
    body = genuine(WOO_PRODUCT)
    send.woocommerce("product.created", body)
    drain()
    clock.now = at("2026-11-21T07:00:00+00:00")
    assert send.woocommerce("product.deleted", {"id": 794}).status_code == 202
    drain()
    # a deletion carries no time: it is dated by its arrival
    assert products(store)["794"].deleted_at == at("2026-11-21T07:00:00+00:00")

    restored = copy.deepcopy(body)
    restored["date_modified_gmt"] = "2026-11-21T08:00:00"  # restoring saves the product
    clock.now = at("2026-11-21T08:00:05+00:00")
    assert send.woocommerce("product.restored", restored).status_code == 202
    drain()
    shirt = products(store)["794"]
    assert shirt.deleted_at is None
    assert shirt.product_type == "Clothing"


def test_woocommerce_names_are_decoded_once_and_uncategorized_says_nothing(send, store, drain):
    body = genuine("woocommerce/product_ship_your_idea_docs.json")
    body = copy.deepcopy(body)
    # WooCommerce escapes names in its JSON; this one shows what a shop's "&" becomes
    body["categories"] = [
        {"id": 15, "name": "Uncategorized", "slug": "uncategorized"},
        {"id": 21, "name": "Hoodies &amp; Sweaters", "slug": "hoodies-sweaters"},
    ]
    body["tags"] = [{"id": 3, "name": "Gift &ndash; idea", "slug": "gift-idea"}]
    send.woocommerce("product.updated", body)
    drain()

    stored = products(store)["799"]
    assert stored.product_type == "Hoodies & Sweaters"
    assert stored.collections == ["Hoodies & Sweaters"]
    assert stored.tags == ["Gift \u2013 idea"]


def test_an_invalid_product_is_refused_with_the_field(send, store):
    response = send.shopify("products/update", {"title": "no id"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "id"


def test_product_rows_go_through_the_inbox(send, store):
    send.shopify("products/create", genuine(SHOPIFY_PRODUCT))
    with store() as session:
        [row] = session.scalars(select(InboxEvent)).all()
    assert (row.event_type, row.subject_id, row.status) == (
        "product.updated",
        "788032119674292922",
        ClaimStatus.PENDING,
    )


def test_another_platform_keeps_the_catalogue_through_the_generic_route(send, store, drain, clock):
    event = {
        "id": "prod-evt-1",
        "type": "product.updated",
        "occurred_at": "2026-11-20T14:00:00Z",
        "product": {
            "external_id": "SKU-KETTLE-2",
            "title": "Gooseneck Kettle",
            "product_type": "Appliances",
            "tags": ["needs-setup"],
            "collections": ["Brewing"],
            "image_url": "https://cdn.example.net/kettle.jpg",
            "url": "https://shop.example.net/kettle",
            "updated_at": "2026-11-20T14:00:00Z",
        },
    }
    response = send.generic(event, timestamp=int(clock.now.timestamp()))
    assert response.status_code == 202, response.text

    drain()

    kettle = products(store)["SKU-KETTLE-2"]
    assert (kettle.source, kettle.product_type, kettle.collections) == (
        "generic",
        "Appliances",
        ["Brewing"],
    )
