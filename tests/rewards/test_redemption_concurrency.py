"""Fifty concurrent redemptions against real databases: exactly one spends the points."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from postpurchase.exceptions import InvalidInput
from postpurchase.loyalty.ledger import balance
from postpurchase.rewards.pool_codes import import_pool_codes
from postpurchase.rewards.redemption import NotEnoughPoints
from postpurchase.store.database import transaction
from postpurchase.store.models import LedgerKind, LoyaltyLedgerEntry, Redemption, RedemptionStatus

THREADS = 50


def _race(redeem, keys):
    barrier = threading.Barrier(len(keys))

    def one(key):
        barrier.wait()
        try:
            return redeem(key)
        except NotEnoughPoints as exc:
            return exc

    with ThreadPoolExecutor(len(keys)) as pool:
        return list(pool.map(one, keys))


def _debits(store):
    with transaction(store) as session:
        return session.scalar(
            select(func.count()).where(LoyaltyLedgerEntry.kind == LedgerKind.REDEMPTION)
        )


def test_fifty_redemptions_of_500_points_with_600_exactly_one_succeeds(
    store, customer_with, shopify_redeemer, shopify
):
    customer = customer_with(600)
    results = _race(
        lambda key: shopify_redeemer.redeem(customer, "five_off", key),
        [f"tab-{n}" for n in range(THREADS)],
    )
    issued = [r for r in results if not isinstance(r, InvalidInput)]
    assert len(issued) == 1 and issued[0].status is RedemptionStatus.ISSUED
    assert sum(isinstance(r, NotEnoughPoints) for r in results) == THREADS - 1
    assert shopify.codes() == [issued[0].code]
    assert _debits(store) == 1
    with transaction(store) as session:
        assert balance(session, customer) == 100
        assert session.scalar(select(func.count()).select_from(Redemption)) == 1


def test_fifty_retries_of_one_key_give_one_code(store, customer_with, shopify_redeemer, shopify):
    customer = customer_with(5000)
    results = _race(
        lambda key: shopify_redeemer.redeem(customer, "five_off", key), ["same"] * THREADS
    )
    assert {r.code for r in results} == {results[0].code} and results[0].code
    assert shopify.codes() == [results[0].code] and _debits(store) == 1
    with transaction(store) as session:
        assert balance(session, customer) == 4500


def test_fifty_customers_racing_for_a_pool_get_distinct_codes(store, customer_with, pool_redeemer):
    with transaction(store) as session:
        import_pool_codes(session, "five_off", [f"POOL-{n:03d}" for n in range(30)])
    customers = [customer_with(500) for _ in range(THREADS)]
    results = _race(lambda n: _pool_redeem(pool_redeemer, customers[n]), list(range(THREADS)))
    codes = [r.code for r in results if not isinstance(r, InvalidInput)]
    assert len(codes) == 30 == len(set(codes))
    assert _debits(store) == 30


def _pool_redeem(redeemer, customer):
    try:
        return redeemer.redeem(customer, "five_off", f"pool-{customer}")
    except InvalidInput as exc:  # the pool ran out: nothing debited
        return exc
