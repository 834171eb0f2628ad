"""Messages show each product's image and page from the catalogue, and a review request
lists each product once with its own review link, for Shopify's documented order #1001
(three variants of one product, lines without image or link)."""

from __future__ import annotations

import copy
import re
from dataclasses import replace

import pytest
from genuine_payloads import DELIVERED, IPOD, ORDER, genuine
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from postpurchase.catalogue.products import catalogue_entries
from postpurchase.messages.context import LoyaltyFigures, ShopProfile, build_context
from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, MessageRenderer
from postpurchase.store.models import Customer, Order, Touchpoint

SHOP = ShopProfile(
    name="Northline Outdoor",
    url="https://northline-outdoor.example",
    support_email="help@northline-outdoor.example",
    postal_address="Northline Outdoor, 12 Harbour Street, Portland, ME 04101, USA",
    public_base_url="https://hooks.northline-outdoor.example/postpurchase",
    loyalty_page_url="https://northline-outdoor.example/pages/rewards",
    review_link_template="{product_url}#write-a-review",
    default_locale="en",
    default_time_zone="UTC",
    signing_key=b"test-signing-key-for-links",
)
IPOD_PAGE = "https://northline-outdoor.myshopify.com/products/ipod-nano"
IPOD_IMAGE = "http://static.shopify.com/s/files/1/6909/3384/products/ipod-nano.png?0"
RENDERER = MessageRenderer(DEFAULT_TEMPLATES_DIR, sms_segment_limit=3)


def _context(store, campaign: str, shop: ShopProfile = SHOP):
    """The context dispatch builds for the order's first ``campaign`` touchpoint."""
    with store() as session:
        touchpoint = session.scalars(
            select(Touchpoint).where(Touchpoint.campaign_id == campaign, Touchpoint.step == 0)
        ).first()
        assert touchpoint is not None, f"no {campaign} planned"
        customer = session.get(Customer, touchpoint.customer_id)
        order = session.scalars(
            select(Order).where(Order.id == touchpoint.order_id).options(selectinload(Order.items))
        ).one()
        entries = catalogue_entries(
            session, ((order.source, order.shop, i.product_id) for i in order.items)
        )
        return build_context(
            shop,
            touchpoint=touchpoint,
            customer=customer,
            order=order,
            loyalty=LoyaltyFigures(points_earned=0, points_balance=0, tier=None),
            catalogue=entries,
        )


@pytest.fixture
def delivered(send, drain, campaigns_with):
    """Order #1001 delivered, with setup tips for its product type; ``product`` says
    whether the product webhook came first."""

    def run(*, product: bool, order=ORDER) -> None:
        if product:
            assert send.shopify("products/update", IPOD).status_code == 202
        assert send.shopify("orders/paid", order).status_code == 202
        assert send.shopify("fulfillment_events/create", DELIVERED).status_code == 202
        drain(config=campaigns_with(setup_tips='"cult products" in order.product_types'))

    return run


def test_a_review_request_lists_three_variants_as_one_product(store, delivered):
    delivered(product=True)

    context = _context(store, "review_request")

    assert [item["title"] for item in context["order"]["items"]] == ["IPod Nano - 8gb"] * 3
    [ipod] = context["order"]["products"]
    assert ipod == {
        "title": "IPod Nano - 8GB",  # the product's own title, not a variant's line
        "quantity": 3,
        "image_url": IPOD_IMAGE,
        "product_url": IPOD_PAGE,
        "review_url": f"{IPOD_PAGE}#write-a-review",
    }
    email = RENDERER.render_email("review_request", context)
    assert email.html.count("Write a review") == 1
    assert f'src="{IPOD_IMAGE}"' in email.html.replace("&amp;", "&")
    assert f"{IPOD_PAGE}#write-a-review" in email.html
    assert email.text.count("Write a review:") == 1
    sms = RENDERER.render_sms("review_request", context, marketing=True)
    assert f"{IPOD_PAGE}#write-a-review" in sms.body


def test_each_product_gets_its_own_review_link(store, delivered, send):
    # the documented T-shirt is in the catalogue too; one line of the order is the T-shirt
    send.shopify("products/create", genuine("shopify/products_create_docs.json"))
    order = copy.deepcopy(ORDER)
    order["line_items"][2].update(
        product_id=788032119674292922, variant_id=642667041472713922, title="Example T-Shirt"
    )
    delivered(product=True, order=order)
    shop = replace(SHOP, review_link_template="https://reviews.example.net/{handle}/new")

    order_view = _context(store, "review_request", shop)["order"]
    products = order_view["products"]

    assert [(p["title"], p["quantity"], p["review_url"]) for p in products] == [
        ("IPod Nano - 8GB", 2, "https://reviews.example.net/ipod-nano/new"),
        ("Example T-Shirt", 1, "https://reviews.example.net/example-t-shirt/new"),
    ]
    # each line links to the review of its product
    assert [i["review_url"] for i in order_view["items"]] == [
        products[0]["review_url"],
        products[0]["review_url"],
        products[1]["review_url"],
    ]
    assert products[1]["product_url"] == (
        "https://northline-outdoor.myshopify.com/products/example-t-shirt"
    )
    assert products[1]["image_url"] is None  # the documented example has no image


def test_setup_tips_show_the_image_and_the_product_page(store, delivered):
    delivered(product=True)

    context = _context(store, "setup_tips")
    email = RENDERER.render_email("setup_tips", context)

    assert f'href="{IPOD_PAGE}"' in email.html
    assert f'src="{IPOD_IMAGE}"' in email.html.replace("&amp;", "&")
    assert f"- IPod Nano - 8GB: {IPOD_PAGE}" in email.text
    # the item list of other messages shows each line with the product's image and link
    items = context["order"]["items"]
    assert {(i["image_url"], i["product_url"]) for i in items} == {(IPOD_IMAGE, IPOD_PAGE)}


def test_an_unknown_product_still_gets_one_entry_linking_to_the_shop(store, delivered):
    delivered(product=False)

    [ipod] = _context(store, "review_request")["order"]["products"]

    assert (ipod["title"], ipod["quantity"], ipod["image_url"]) == ("IPod Nano - 8gb", 3, None)
    assert ipod["review_url"] == "https://northline-outdoor.example#write-a-review"


def test_a_deleted_product_keeps_its_image_but_not_its_dead_page(store, delivered, send, drain):
    delivered(product=True)
    send.shopify("products/delete", {"id": 632910392})
    drain()

    [ipod] = _context(store, "review_request")["order"]["products"]

    assert ipod["image_url"] == IPOD_IMAGE
    assert not re.search(r"/products/ipod-nano", ipod["product_url"])
