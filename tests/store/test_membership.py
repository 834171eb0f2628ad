"""Membership tests over long lists pick exactly the listed rows on both backends."""

from __future__ import annotations

from sqlalchemy import insert, select

from postpurchase.store.database import transaction
from postpurchase.store.membership import among, pairs_among
from postpurchase.store.models import Customer


def _customers(store, keys):
    with transaction(store) as session:
        session.execute(insert(Customer), [{"source": s, "external_id": e} for s, e in keys])


def test_among_picks_the_listed_values(store):
    _customers(store, [("shopify", str(n)) for n in range(1500)])
    wanted = [str(n) for n in range(0, 1500, 2)]
    with store() as session:
        found = session.scalars(
            select(Customer.external_id).where(among(session, Customer.external_id, wanted))
        ).all()
        none = session.scalars(select(Customer.id).where(among(session, Customer.id, []))).all()
    assert sorted(found) == sorted(wanted)
    assert none == []


def test_pairs_among_matches_whole_pairs_only(store):
    _customers(store, [("shopify", "1"), ("shopify", "2"), ("woo", "1"), ("woo", "2")])
    with store() as session:
        found = session.execute(
            select(Customer.source, Customer.external_id).where(
                pairs_among(
                    session,
                    Customer.source,
                    Customer.external_id,
                    [("shopify", "1"), ("woo", "2"), ("woo", "3")],
                )
            )
        ).all()
    assert sorted(found) == [("shopify", "1"), ("woo", "2")]
