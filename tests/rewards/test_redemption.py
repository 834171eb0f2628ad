"""Redemption: one debit and one code, whatever is retried, refused or times out (invariant 8).

Against real SQLite and PostgreSQL and fake Shopify / WooCommerce servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from fakes.http_fake import Fault
from shop_rewards import NOW
from sqlalchemy import select

from postpurchase.exceptions import InvalidInput
from postpurchase.loyalty.ledger import balance
from postpurchase.rewards.lifecycle import complete_pending
from postpurchase.rewards.pool_codes import import_pool_codes
from postpurchase.rewards.redemption import (
    NotEnoughPoints,
    RewardUnavailable,
    lock_customer,
    new_code,
    reserve,
)
from postpurchase.store.database import engine_of, transaction
from postpurchase.store.models import (
    LedgerKind,
    LoyaltyLedgerEntry,
    Redemption,
    RedemptionStatus,
)


def ledger_rows(store, customer_id):
    with transaction(store) as session:
        rows = session.scalars(
            select(LoyaltyLedgerEntry)
            .where(LoyaltyLedgerEntry.customer_id == customer_id)
            .order_by(LoyaltyLedgerEntry.id)
        ).all()
        return [(r.kind, r.points, r.cause) for r in rows]


def points_of(store, customer_id):
    with transaction(store) as session:
        return balance(session, customer_id)


def graphql_calls(fake):
    return [json.loads(r.body) for r in fake.requests]


def test_shopify_amount_off_is_one_debit_and_one_code_for_the_customer(
    store, customer_with, shopify_redeemer, shopify
):
    customer = customer_with(600)
    view = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert view.status is RedemptionStatus.ISSUED and view.code and view.code.startswith("PP-")
    assert shopify.codes() == [view.code]
    sent = graphql_calls(shopify)[0]
    assert "discountCodeBasicCreate" in sent["query"]
    given = sent["variables"]["input"]
    assert given["code"] == view.code
    assert given["usageLimit"] == 1 and given["appliesOncePerCustomer"] is True
    assert given["context"] == {"customers": {"add": ["gid://shopify/Customer/7208815100001"]}}
    assert given["customerGets"] == {
        "value": {"discountAmount": {"amount": "5.00", "appliesOnEachItem": False}},
        "items": {"all": True},
    }
    assert given["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "25.00"}}
    assert given["endsAt"] == (NOW + timedelta(days=30)).isoformat()
    assert points_of(store, customer) == 100
    with transaction(store) as session:
        row = session.scalars(select(Redemption)).one()
        assert row.platform_ref and row.platform_ref.startswith("gid://shopify/DiscountCodeNode/")
    assert ledger_rows(store, customer)[-1] == (
        LedgerKind.REDEMPTION,
        -500,
        f"redemption:{view.id}",
    )


def test_the_same_key_returns_the_same_code_and_debits_once(
    store, customer_with, shopify_redeemer, shopify
):
    customer = customer_with(1200)
    first = shopify_redeemer.redeem(customer, "five_off", "req-1")
    again = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert again == first
    assert len(shopify.requests) == 1 and points_of(store, customer) == 700
    other = shopify_redeemer.redeem(customer, "five_off", "req-2")
    assert other.code != first.code and points_of(store, customer) == 200
    with pytest.raises(InvalidInput, match="used for another redemption"):
        shopify_redeemer.redeem(customer, "ten_percent", "req-1")
    stranger = customer_with(900)
    with pytest.raises(InvalidInput, match="used for another redemption"):
        shopify_redeemer.redeem(stranger, "five_off", "req-1")
    assert points_of(store, stranger) == 900


def test_a_key_used_before_its_reward_left_the_catalogue_still_returns_its_code(
    store, customer_with, shopify_redeemer, shopify, config
):
    customer = customer_with(600)
    first = shopify_redeemer.redeem(customer, "five_off", "req-1")
    with transaction(store) as session:
        note = session.scalars(
            select(LoyaltyLedgerEntry.note).where(LoyaltyLedgerEntry.points < 0)
        ).one()
    assert note == f"five_off: {config.reward('five_off').title}"
    shopify_redeemer.config = config.model_copy(
        update={"rewards": [r for r in config.rewards if r.name != "five_off"]}
    )
    assert shopify_redeemer.redeem(customer, "five_off", "req-1") == first
    with pytest.raises(RewardUnavailable, match="no reward 'five_off'"):
        shopify_redeemer.redeem(customer, "five_off", "req-2")
    assert len(shopify.requests) == 1 and points_of(store, customer) == 100


def test_free_shipping_and_free_product_use_their_mutations(
    store, customer_with, shopify_redeemer, shopify
):
    customer = customer_with(600)
    shopify_redeemer.redeem(customer, "free_shipping", "a")
    shopify_redeemer.redeem(customer, "free_tote", "b")
    calls = graphql_calls(shopify)
    assert "discountCodeFreeShippingCreate" in calls[0]["query"]
    assert calls[0]["variables"]["input"]["destination"] == {"all": True}
    assert "productVariants" in calls[1]["query"]  # the SKU's variant, looked up once
    tote = calls[2]["variables"]["input"]["customerGets"]
    assert tote == {
        "value": {"percentage": 1.0},
        "items": {
            "products": {"productVariantsToAdd": ["gid://shopify/ProductVariant/44871243055"]}
        },
    }
    assert points_of(store, customer) == 100


def test_not_enough_points_or_another_tier_changes_nothing(
    store, customer_with, shopify_redeemer, shopify
):
    customer = customer_with(499)
    with pytest.raises(NotEnoughPoints, match="costs 500 points; balance is 499"):
        shopify_redeemer.redeem(customer, "five_off", "k")
    with pytest.raises(RewardUnavailable, match="for tier"):
        shopify_redeemer.redeem(customer, "vip_gift", "k")
    with pytest.raises(RewardUnavailable, match="no reward 'gold_bar'"):
        shopify_redeemer.redeem(customer, "gold_bar", "k")
    vip = customer_with(100, tier="VIP")
    assert shopify_redeemer.redeem(vip, "vip_gift", "v").status is RedemptionStatus.ISSUED
    assert shopify.codes() and points_of(store, customer) == 499
    with transaction(store) as session:
        assert session.scalars(select(Redemption)).one().customer_id == vip


def test_a_user_error_gives_the_points_back(store, customer_with, shopify_redeemer, shopify):
    shopify.customers = {"1"}  # the shop does not know this customer
    customer = customer_with(600)
    view = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert view.status is RedemptionStatus.REFUNDED and view.code is None
    assert "does not exist" in (view.error or "")
    assert points_of(store, customer) == 600 and shopify.codes() == []
    kinds = [(kind, points, cause) for kind, points, cause in ledger_rows(store, customer)[1:]]
    assert kinds == [
        (LedgerKind.REDEMPTION, -500, f"redemption:{view.id}"),
        (LedgerKind.REDEMPTION_REFUND, 500, f"redemption_refund:{view.id}"),
    ]
    # Retried with the same key: the same refunded redemption, nothing more.
    assert shopify_redeemer.redeem(customer, "five_off", "req-1") == view
    assert points_of(store, customer) == 600


def test_refused_credentials_give_the_points_back(store, customer_with, shopify_redeemer, shopify):
    shopify.fail_next(Fault(401, b'{"errors":"[API] Invalid API key or access token"}'))
    customer = customer_with(600)
    view = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert view.status is RedemptionStatus.REFUNDED and "credentials refused (401)" in view.error
    assert points_of(store, customer) == 600


def test_429_and_throttling_are_retried_after_the_wait_asked(
    store, customer_with, shopify_redeemer, shopify, sleeps
):
    shopify.fail_next(
        Fault(429, b'{"errors":"Exceeded 2 calls per second"}', {"Retry-After": "1.5"})
    )
    shopify.throttle_next(1)
    customer = customer_with(600)
    view = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert view.status is RedemptionStatus.ISSUED and shopify.codes() == [view.code]
    assert sleeps == [1.5, pytest.approx(0.05)]  # Retry-After, then (10 - 5) / 100 s
    assert points_of(store, customer) == 100


def test_a_timeout_after_the_code_was_made_keeps_that_one_code(
    store, customer_with, shopify_redeemer, shopify
):
    # The platform makes the code but answers after the client gave up.
    shopify.fail_next(Fault(delay=0.8))
    shopify_redeemer.sleep = lambda _: time.sleep(0.6)  # the first request is applied meanwhile
    customer = customer_with(600)
    view = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert view.status is RedemptionStatus.ISSUED
    assert shopify.codes() == [view.code]  # asked again: TAKEN, then found, never a second
    calls = [c["query"] for c in graphql_calls(shopify)]
    assert ["codeDiscountNodeByCode" in q for q in calls] == [False, False, True]
    assert points_of(store, customer) == 100


def test_a_platform_down_leaves_it_pending_then_recovery_issues_it(
    store, customer_with, shopify_redeemer, shopify
):
    shopify.fail_next(*[Fault(503, b"Service Unavailable")] * 3)
    customer = customer_with(600)
    view = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert view.status is RedemptionStatus.PENDING and view.code is None
    assert points_of(store, customer) == 100  # held while the code is on its way
    result = complete_pending(shopify_redeemer, now=NOW + timedelta(minutes=5))
    assert (result.issued, result.refunded, result.still_pending) == (1, 0, 0)
    again = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert again.status is RedemptionStatus.ISSUED and shopify.codes() == [again.code]


@pytest.mark.parametrize("refused", [False, True])
def test_a_crash_between_debit_and_code_is_recovered(
    store, config, customer_with, shopify_redeemer, shopify, refused
):
    customer_id = customer_with(600)
    # The process dies right after the debit's transaction commits.
    with transaction(store) as session:
        reserve(
            session,
            customer=lock_customer(session, customer_id),
            reward_name="five_off",
            key="crashed",
            config=config,
            platform="shopify",
            now=NOW,
        )
    assert points_of(store, customer_id) == 100 and shopify.codes() == []
    if refused:
        shopify.customers = {"1"}
    assert complete_pending(shopify_redeemer, now=NOW + timedelta(seconds=30)).still_pending == 0
    assert shopify.codes() == []  # too young: the request that made it may still be at work
    result = complete_pending(shopify_redeemer, now=NOW + timedelta(minutes=3))
    with transaction(store) as session:
        row = session.scalars(select(Redemption)).one()
    if refused:
        assert result.refunded == 1 and row.status is RedemptionStatus.REFUNDED
        assert points_of(store, customer_id) == 600 and shopify.codes() == []
    else:
        assert result.issued == 1 and row.status is RedemptionStatus.ISSUED
        assert shopify.codes() == [row.code] and points_of(store, customer_id) == 100
    assert complete_pending(shopify_redeemer, now=NOW + timedelta(minutes=9)) == type(result)()


def test_unreachable_for_a_day_is_refunded_only_when_the_code_does_not_exist(
    store, customer_with, shopify_redeemer, shopify
):
    customer = customer_with(600)
    shopify.fail_next(*[Fault(500, b"")] * 3)
    view = shopify_redeemer.redeem(customer, "five_off", "req-1")
    assert view.status is RedemptionStatus.PENDING
    shopify.fail_next(*[Fault(500, b"")] * 3)  # recovery's three tries fail; the lookup works
    result = complete_pending(shopify_redeemer, now=NOW + timedelta(hours=25))
    assert result.refunded == 1 and points_of(store, customer) == 600


def test_woocommerce_coupon_is_for_the_customers_email_and_one_use(
    store, customer_with, woo_redeemer, woocommerce
):
    customer = customer_with(900, source="woocommerce")
    view = woo_redeemer.redeem(customer, "five_off", "w-1")
    assert view.status is RedemptionStatus.ISSUED
    sent = json.loads(woocommerce.requests[0].body)
    assert woocommerce.requests[0].path == "/wp-json/wc/v3/coupons"
    assert sent["code"] == view.code and sent["usage_limit"] == 1
    assert sent["usage_limit_per_user"] == 1
    assert sent["email_restrictions"] == ["grace.hopper1@example.com"]
    assert (sent["discount_type"], sent["amount"], sent["minimum_amount"]) == (
        "fixed_cart",
        "5.00",
        "25.00",
    )
    assert sent["date_expires_gmt"] == "2026-12-30T15:00:00"
    tote = woo_redeemer.redeem(customer, "free_tote", "w-2")
    body = json.loads(woocommerce.requests[-1].body)
    assert body["product_ids"] == [794] and body["amount"] == "100"
    assert tote.status is RedemptionStatus.ISSUED and points_of(store, customer) == 200


def test_woocommerce_timeout_then_already_exists_is_found(
    store, customer_with, woo_redeemer, woocommerce
):
    woocommerce.fail_next(Fault(delay=0.8))
    woo_redeemer.sleep = lambda _: time.sleep(0.6)  # the first request is applied meanwhile
    customer = customer_with(600, source="woocommerce")
    view = woo_redeemer.redeem(customer, "five_off", "w-1")
    assert view.status is RedemptionStatus.ISSUED
    assert woocommerce.codes() == [view.code.lower()]
    assert [r.method for r in woocommerce.requests] == ["POST", "POST", "GET"]


def test_woocommerce_refusal_and_429(store, customer_with, woo_redeemer, woocommerce, sleeps):
    customer = customer_with(1000, source="woocommerce")
    woocommerce.fail_next(
        Fault(429, b'{"code":"too_many_requests"}', {"Retry-After": "2"}),
        Fault(
            401,
            b'{"code":"woocommerce_rest_cannot_create","message":"Sorry, you are not allowed '
            b'to create resources.","data":{"status":401}}',
        ),
    )
    view = woo_redeemer.redeem(customer, "five_off", "w-1")
    assert view.status is RedemptionStatus.REFUNDED and sleeps == [2.0]
    assert points_of(store, customer) == 1000 and woocommerce.codes() == []


def test_pool_codes_are_handed_out_once(store, customer_with, pool_redeemer):
    with transaction(store) as session:
        assert import_pool_codes(session, "five_off", ["SAVE5-AAA", "SAVE5-BBB", " "]) == 2
        assert import_pool_codes(session, "five_off", ["SAVE5-AAA"]) == 0
    first, second = customer_with(600), customer_with(1100)
    a = pool_redeemer.redeem(first, "five_off", "p-1")
    b = pool_redeemer.redeem(second, "five_off", "p-2")
    assert {a.code, b.code} == {"SAVE5-AAA", "SAVE5-BBB"}
    assert pool_redeemer.redeem(first, "five_off", "p-1") == a
    with pytest.raises(RewardUnavailable, match="no pool codes left for five_off"):
        pool_redeemer.redeem(second, "five_off", "p-3")
    assert points_of(store, second) == 600


def test_codes_are_ten_typeable_characters_each_drawn_from_the_whole_alphabet():
    codes = [new_code("PP") for _ in range(3000)]
    assert all(
        re.fullmatch(r"PP-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{2}", c)
        for c in codes
    )
    bodies = [c.replace("-", "")[2:] for c in codes]
    # Every position takes every one of the 31 characters (3000 draws: missing one by chance
    # has a probability below 1e-40).
    assert all(len({body[n] for body in bodies}) == 31 for n in range(10))
    assert len(set(codes)) == len(codes)


def test_marking_a_code_issued_leaves_its_pooled_connection_as_it_was(
    store, customer_with, shopify_redeemer
):
    # On PostgreSQL the mark commits without waiting for the disk, for its own transaction
    # only: the next transaction on that connection (a debit, say) waits again.
    engine = engine_of(store)
    customer = customer_with(600)
    assert shopify_redeemer.redeem(customer, "five_off", "req-1").status is RedemptionStatus.ISSUED
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:  # the one connection this test's requests used
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
