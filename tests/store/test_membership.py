"""Membership tests over long lists pick exactly the listed rows on both backends."""

from __future__ import annotations

from sqlalchemy import insert, select

from postpurchase.store.database import transaction
from postpurchase.store.membership import among, key_parameters, keys_among, keys_among_parameter
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


def _eight_customers(store) -> None:
    """Customers under every combination of two sources, two shops and two external ids."""
    with transaction(store) as session:
        session.execute(
            insert(Customer),
            [
                {"source": source, "shop": shop, "external_id": external_id}
                for source in ("shopify", "woo")
                for shop in ("a.example", "b.example")
                for external_id in ("1", "2")
            ],
        )


def test_keys_among_matches_whole_keys_only(store):
    _eight_customers(store)
    columns = (Customer.source, Customer.shop, Customer.external_id)
    wanted = [("shopify", "a.example", "1"), ("woo", "b.example", "2"), ("woo", "", "1")]
    with store() as session:
        found = session.execute(select(*columns).where(keys_among(session, columns, wanted))).all()
    assert sorted(found) == [("shopify", "a.example", "1"), ("woo", "b.example", "2")]


def test_keys_among_parameter_takes_new_keys_each_run(store):
    _eight_customers(store)
    columns = (Customer.source, Customer.shop, Customer.external_id)
    with store() as session:
        dialect = session.get_bind().dialect.name
        # one statement, run with other keys each time
        query = select(*columns).where(keys_among_parameter(dialect, columns, "wanted"))

        def found(wanted):
            return sorted(session.execute(query, key_parameters(dialect, "wanted", wanted)))

        first = found([("shopify", "a.example", "1"), ("woo", "b.example", "2"), ("woo", "", "1")])
        second = found([("woo", "a.example", "1")])
    assert first == [("shopify", "a.example", "1"), ("woo", "b.example", "2")]
    assert second == [("woo", "a.example", "1")]


# Values that mean something in PostgreSQL's text form of an array, which carries the lists.
_AWKWARD = ['say "hi"', "back\\slash", "{1,2}", "a,b", "NULL", "", " padded ", "né\tstop"]


def test_among_keeps_awkward_strings_and_ints_exact(store):
    _customers(store, [("shopify", value) for value in [*_AWKWARD, "null", "plain"]])
    with store() as session:
        found = session.scalars(
            select(Customer.external_id).where(among(session, Customer.external_id, _AWKWARD))
        ).all()
        ids = session.scalars(select(Customer.id).where(Customer.external_id != "plain")).all()
        by_id = session.scalars(
            select(Customer.external_id).where(among(session, Customer.id, ids))
        )
        with_none = session.scalars(
            select(Customer.external_id).where(
                among(session, Customer.external_id, ["plain", None])
            )
        ).all()
    assert sorted(found) == sorted(_AWKWARD)
    assert sorted(by_id) == sorted([*_AWKWARD, "null"])
    assert with_none == ["plain"]


def test_keys_among_keeps_awkward_strings_exact(store):
    _customers(store, [(source, value) for source in ("shopify", "woo") for value in _AWKWARD])
    columns = (Customer.source, Customer.external_id)
    wanted = [("woo", value) for value in _AWKWARD]
    with store() as session:
        found = session.execute(select(*columns).where(keys_among(session, columns, wanted))).all()
    assert sorted(found) == sorted(wanted)
