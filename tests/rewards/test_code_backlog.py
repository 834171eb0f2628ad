"""A drained backlog of genuine orders, some carrying reward and referral codes of ours among
the shop's own discount codes (``code_backlog``): each code is taken by the first order of its
shop that carries it, each referred customer's first paid order decides their referral."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from code_backlog import AWAY, FIRST, REFERRALS, REWARDS, cancelled, codes_of, fill
from shop_rewards import NOW
from sqlalchemy import select

from benchmarks import planning
from postpurchase.campaigns.config import load_campaigns
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.models import (
    Customer,
    Order,
    Redemption,
    RedemptionStatus,
    Referral,
    ReferralCode,
    ReferralStatus,
)

ORDERS = 120


def test_codes_in_a_backlog_of_genuine_orders(engine, store):
    events = fill(engine, ORDERS)
    loyalty = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    # batches of a few orders: the cancellations come in batches after their orders'
    summary = process_inbox(
        store,
        load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
        worker="test",
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: NOW,
        batch_size=100,
        loyalty=loyalty,
    )
    assert (sum(summary.events.values()), summary.failed) == (events, 0)
    with store() as session:
        order_ids = {
            (shop, external): id_
            for id_, shop, external in session.execute(
                select(Order.id, Order.shop, Order.external_id)
            )
        }
        used = {r.code: (r.status, r.order_id) for r in session.scalars(select(Redemption))}
        referrals = {
            (r.referred_customer_id, r.referrer_customer_id, r.order_id): (r.status, r.reason)
            for r in session.scalars(select(Referral))
        }
        codes = dict(session.execute(select(ReferralCode.code, ReferralCode.customer_id)).all())
        customers = {
            (shop, external): id_
            for id_, shop, external in session.execute(
                select(Customer.id, Customer.shop, Customer.external_id)
            )
        }

    def order_of(n: int) -> int:
        return order_ids[(codes_of(n)[0] or "", planning._order(n)["external_id"])]

    # Rewards: in backlog order, the first order of the code's shop carrying it takes it;
    # the refunded one and the other shop's stay.
    expected = {}
    for n in range(ORDERS):
        shop, discounts, _ = codes_of(n)
        for code in {c.strip().upper() for c in discounts} & {*REWARDS[:9], "RW-AWAY"}:
            if (shop == AWAY) == (code == "RW-AWAY"):
                expected.setdefault(code, (RedemptionStatus.USED, order_of(n)))
    assert {code: found for code, found in used.items() if found[1]} == expected
    assert used["RW-9"] == (RedemptionStatus.REFUNDED, None)
    assert len(expected) == 10

    # Referrals: decided on the referred customer's first order naming a code of its shop.
    statuses = {status for status, _ in referrals.values()}
    reasons = {reason for _, reason in referrals.values()}
    assert statuses == {ReferralStatus.REWARDED, ReferralStatus.REFUSED, ReferralStatus.REVERSED}
    assert reasons >= {
        None,
        "the shipping address matches the referrer's",
        "the phone matches the referrer's",
        "not the customer's first order",
        "the order was cancelled",
    }
    referrers = {referrer for _, referrer, _ in referrals}
    assert codes[FIRST] in referrers and codes["REF-AWAY"] in referrers
    assert {codes[code] for code in REFERRALS} <= referrers
    for referred, referrer, order_id in referrals:
        n = next(n for n in range(ORDERS) if order_of(n) == order_id)
        shop, discounts, referral = codes_of(n)
        # (codes arrive stripped: the normalised event's)
        named = [*referral, *(c.strip().upper() for c in discounts)]
        of_shop = [c for c in named if c in codes and (c == "REF-AWAY") == (shop == AWAY)]
        assert codes[of_shop[0]] == referrer, (n, named)
        customer = planning._order(n)["customer"]["external_id"]
        assert customers[(shop or "", customer)] == referred
        if referrals[(referred, referrer, order_id)][0] is ReferralStatus.REVERSED:
            assert cancelled(n)
