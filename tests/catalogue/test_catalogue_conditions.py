"""Conditions and loyalty bonuses read product type, tags and collections from the catalogue:
a genuine Shopify order (three variants of Shopify's documented "IPod Nano - 8gb", whose line
items carry no product type) gets setup tips once its product is known, and not before."""

from __future__ import annotations

import copy

from event_journeys import at
from genuine_payloads import CULT, DELIVERED, IPOD, ORDER, genuine
from sqlalchemy import select

from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.models import LoyaltyLedgerEntry, Product, Touchpoint


def _journey(send, *, product: bool) -> None:
    if product:
        assert send.shopify("products/update", IPOD).status_code == 202
    assert send.shopify("orders/paid", ORDER).status_code == 202
    assert send.shopify("fulfillment_events/create", DELIVERED).status_code == 202


def _campaigns(store) -> dict[str, int]:
    with store() as session:
        rows = session.scalars(select(Touchpoint.campaign_id)).all()
    return {campaign: rows.count(campaign) for campaign in set(rows)}


def test_setup_tips_go_to_a_genuine_order_once_its_product_is_known(
    send, store, drain, campaigns_with
):
    _journey(send, product=True)

    summary = drain(config=campaigns_with(setup_tips=CULT))

    assert summary.failed == 0
    assert _campaigns(store).get("setup_tips") == 1
    assert not [reason for reason in summary.skipped if reason.startswith("setup_tips")]


def test_without_the_product_the_condition_does_not_match(send, store, drain, campaigns_with):
    _journey(send, product=False)

    summary = drain(config=campaigns_with(setup_tips=CULT))

    assert "setup_tips" not in _campaigns(store)
    assert summary.skipped[f"setup_tips: condition not met: {CULT}"] == 1
    # the product is now known to exist, and due for a look-up through the API
    with store() as session:
        [product] = session.scalars(select(Product)).all()
    assert (product.external_id, product.source_updated_at, product.product_type) == (
        "632910392",
        None,
        None,
    )


def test_the_product_arriving_later_counts_for_later_events(send, store, drain, campaigns_with):
    config = campaigns_with(setup_tips=CULT)
    assert send.shopify("orders/paid", ORDER).status_code == 202
    drain(config=config)
    # the product webhook comes after the order, before the delivery
    assert send.shopify("products/update", IPOD).status_code == 202
    assert send.shopify("fulfillment_events/create", DELIVERED).status_code == 202

    drain(config=config)

    assert _campaigns(store).get("setup_tips") == 1


def test_conditions_on_product_tags(send, store, drain, campaigns_with):
    # Shopify's tags "Emotive, Flash Memory, MP3, Music", matched lower-cased
    _journey(send, product=True)

    drain(config=campaigns_with(setup_tips='"flash memory" in order.product_tags'))

    assert _campaigns(store).get("setup_tips") == 1


def test_conditions_on_collections_from_woocommerce_categories(
    send, store, drain, campaigns_with, clock
):
    clock.now = at("2026-11-21T10:05:00+00:00")  # the order fixture's last change, and after
    assert (
        send.woocommerce(
            "product.updated", genuine("woocommerce/product_premium_quality_docs.json")
        ).status_code
        == 202
    )
    order = woo_order(product_id=794)
    assert send.woocommerce("order.updated", order).status_code == 202

    summary = drain(config=campaigns_with(points_earned='"t-shirts" in order.collections'))

    assert summary.failed == 0
    assert _campaigns(store).get("points_earned") == 1


def test_conditions_on_collections_do_not_match_other_products(
    send, store, drain, campaigns_with, clock
):
    clock.now = at("2026-11-21T10:05:00+00:00")
    product = genuine("woocommerce/product_premium_quality_docs.json")
    assert send.woocommerce("product.updated", product).status_code == 202
    assert send.woocommerce("order.updated", woo_order(product_id=355)).status_code == 202

    drain(config=campaigns_with(points_earned='"t-shirts" in order.collections'))

    assert "points_earned" not in _campaigns(store)


def woo_order(*, product_id: int) -> dict:
    """The project's WooCommerce order fixture (status processing) with its first line's
    product set to ``product_id``."""
    from deliveries import fixture_json

    order = copy.deepcopy(fixture_json("woocommerce/order_processing.json"))
    order["line_items"][0]["product_id"] = product_id
    return order


def test_a_loyalty_bonus_on_a_product_type_uses_the_catalogue(send, store, drain):
    shipped = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    loyalty = shipped.model_copy(
        update={
            "bonuses": [
                shipped.bonuses[1].model_copy(update={"product_type": "Cult Products"}),
            ]
        }
    )
    # the shipped bonus is the Accessories one: same shape, another type
    assert shipped.bonuses[1].product_type == "Accessories"
    assert send.shopify("products/update", IPOD).status_code == 202
    assert send.shopify("orders/paid", ORDER).status_code == 202

    drain(loyalty=loyalty)

    with store() as session:
        [award] = session.scalars(select(LoyaltyLedgerEntry)).all()
    # 398.00 subtotal: base 398, and 1 extra point per unit on the three iPods (597.00)
    assert (award.points, award.note) == (398 + 597, "base 398, double_points_on_accessories +597")


def test_without_the_product_no_bonus(send, store, drain):
    shipped = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    loyalty = shipped.model_copy(
        update={
            "bonuses": [shipped.bonuses[1].model_copy(update={"product_type": "Cult Products"})]
        }
    )
    send.shopify("orders/paid", ORDER)

    drain(loyalty=loyalty)

    with store() as session:
        [award] = session.scalars(select(LoyaltyLedgerEntry)).all()
    assert (award.points, award.note) == (398, "base 398")
