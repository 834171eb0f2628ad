"""Referrals: both customers get points on the referred person's first paid order, once;
refused for the same person (email, phone, address), a later order or a refunded one."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sent_statements import statements_sent
from shop_rewards import NOW
from sqlalchemy import select

from postpurchase.events import CanonicalEvent, address_key
from postpurchase.loyalty.ledger import balance
from postpurchase.rewards.referrals import referral_code_for
from postpurchase.store.database import transaction
from postpurchase.store.models import Customer, Referral, ReferralStatus

_n = itertools.count(1)
HOME = address_key("12 Harbour Street", "04101", "US")


@pytest.fixture
def loyalty(config):
    earn = config.more_ways_to_earn.model_copy(
        update={
            "referral": config.more_ways_to_earn.referral.model_copy(
                update={"referrer": 300, "referred": 150}
            )
        }
    )
    # No points per order here: only referral points show in the balances.
    earning = config.earning.model_copy(update={"points_per_unit": 0})
    return config.model_copy(update={"more_ways_to_earn": earn, "earning": earning})


def order(
    customer: str,
    *,
    kind="order.paid",
    email=None,
    phone=None,
    ref=None,
    address=HOME,
    status="paid",
    order_id=None,
    codes=(),
):
    n = next(_n)
    snapshot = {
        "external_id": order_id or f"90{n}",
        "name": f"#90{n}",
        "currency": "USD",
        "total": "80.00",
        "subtotal": "80.00",
        "financial_status": status,
        "placed_at": NOW.isoformat(),
        "updated_at": (NOW + timedelta(seconds=n)).isoformat(),
        "discount_codes": list(codes),
        "customer": {
            "external_id": customer,
            "email": email or f"{customer}@example.com",
            **({"phone": phone} if phone else {}),
        },
        **({"referral_code": ref} if ref else {}),
        **({"shipping_address_key": address} if address else {}),
    }
    event = {
        "type": kind,
        "occurred_at": (NOW + timedelta(seconds=n)).isoformat(),
        "order": snapshot,
    }
    return CanonicalEvent.model_validate(event).as_payload()


@pytest.fixture
def send(deliver, loyalty):
    """``send(*payloads)``: generic deliveries, processed with the referral config."""
    return lambda *payloads: deliver(*payloads, source="generic", loyalty=loyalty)


def referrer_code(store, send, external_id="ada", **kw):
    send(order(external_id, **kw))
    with transaction(store) as session:
        customer = session.scalars(
            select(Customer).where(Customer.external_id == external_id)
        ).one()
        return customer.id, referral_code_for(session, customer.id)


def points(store, external_id):
    with transaction(store) as session:
        customer = session.scalars(
            select(Customer).where(Customer.external_id == external_id)
        ).one()
        return balance(session, customer.id)


def referral(store):
    with transaction(store) as session:
        return session.scalars(select(Referral)).one()


def test_both_get_points_once_on_the_first_paid_order(store, send):
    _, code = referrer_code(store, send)
    with transaction(store) as session:
        assert referral_code_for(session, _) == code  # stable
    placed = order(
        "bea", kind="order.placed", status="pending", ref=code, address=None, order_id="777"
    )
    send(placed)
    assert points(store, "bea") == 0  # not paid yet
    paid = order("bea", ref=code, address=address_key("1 Elm Road", "90210", "US"), order_id="777")
    send(paid)
    send(paid)  # redelivered
    assert (points(store, "ada"), points(store, "bea")) == (300, 150)
    assert referral(store).status is ReferralStatus.REWARDED
    send(order("bea", ref=code, address=None))  # a second order: nothing more
    assert (points(store, "ada"), points(store, "bea")) == (300, 150)


def test_a_referral_code_typed_as_a_discount_code_counts(store, send):
    _, code = referrer_code(store, send)
    send(order("bea", codes=[code.lower()], address=None))
    assert (points(store, "ada"), points(store, "bea")) == (300, 150)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"email": "ada@example.com"}, "the email matches the referrer's"),
        ({"phone": "+12075550100"}, "the phone matches the referrer's"),
        ({"address": HOME}, "the shipping address matches the referrer's"),
        ({"status": "refunded"}, "the order was refunded"),
    ],
)
def test_refused(store, send, change, reason):
    _, code = referrer_code(store, send, phone="+12075550100")
    fields = {"address": address_key("1 Elm Road", "90210", "US")} | change
    send(order("bea", ref=code, **fields))
    assert (points(store, "ada"), points(store, "bea")) == (0, 0)
    found = referral(store)
    assert found.status is ReferralStatus.REFUSED and found.reason == reason


def test_not_a_first_order_is_refused(store, send):
    _, code = referrer_code(store, send)
    send(order("bea", address=None))
    send(order("bea", ref=code, address=None))
    assert points(store, "ada") == 0 and referral(store).reason == "not the customer's first order"


def test_a_rewarded_referral_is_taken_back_when_the_order_is_refunded(store, send):
    _, code = referrer_code(store, send)
    send(order("bea", ref=code, address=None, order_id="555"))
    assert points(store, "ada") == 300
    send(
        order(
            "bea", kind="order.refunded", status="refunded", ref=code, address=None, order_id="555"
        ),
    )
    assert (points(store, "ada"), points(store, "bea")) == (0, 0)
    assert referral(store).status is ReferralStatus.REVERSED


def test_platforms_carry_the_referral_code_and_an_address_digest():
    import json
    from pathlib import Path

    from postpurchase.platforms import shopify, woocommerce

    genuine = Path(__file__).resolve().parents[1] / "fixtures" / "genuine"
    data = json.loads((genuine / "shopify" / "admin_api_order_wrapped.json").read_text())["order"]
    data["note_attributes"].append({"name": "referral_code", "value": "REF-7KQ9MX4T"})
    event = shopify.normalise("orders/create", data, received_at=NOW)
    ship = data["shipping_address"]
    assert event.order.referral_code == "REF-7KQ9MX4T"
    assert event.order.shipping_address_key == address_key(
        ship["address1"], ship["zip"], ship["country_code"]
    )
    woo = json.loads((genuine / "woocommerce" / "order_processing_docs.json").read_text())
    woo["meta_data"].append({"id": 9001, "key": "referral_code", "value": "REF-7KQ9MX4T"})
    event = woocommerce.normalise("order.updated", woo)
    assert event.order.referral_code == "REF-7KQ9MX4T"
    assert event.order.shipping_address_key == address_key("969 Market", "94103", "US")
    assert address_key("969  MARKET", "94103", "us") == address_key("969 Market", "94103", "US")


def test_a_decision_sees_the_addresses_of_the_events_before_it_in_its_batch(store, send):
    # as if the batch's events came one at a time: an address the referred customer shipped
    # to earlier in the batch refuses the referral, one they ship to later does not count
    _, code = referrer_code(store, send)
    elm = address_key("1 Elm Road", "90210", "US")
    send(
        order("bea", kind="order.placed", status="pending", address=HOME),
        order("bea", ref=code, address=elm),
        order("cy", ref=code, address=elm),
        order("cy", kind="order.placed", status="pending", address=HOME),
    )
    with transaction(store) as session:
        decided = {
            r.referred_customer_id: (r.status, r.reason) for r in session.scalars(select(Referral))
        }
        ids = {
            name: id_ for name, id_ in session.execute(select(Customer.external_id, Customer.id))
        }
    assert decided == {
        ids["bea"]: (ReferralStatus.REFUSED, "the shipping address matches the referrer's"),
        ids["cy"]: (ReferralStatus.REWARDED, None),
    }


def referral_lookups(engine):
    """The statements looking up whether customers have a referral, sent while inside."""
    return statements_sent(
        engine, lambda statement: "WHERE referrals.referred_customer_id" in statement
    )


def test_a_batch_looks_up_whether_its_referred_customers_have_a_referral_once(store, send, engine):
    _, code = referrer_code(store, send)
    with referral_lookups(engine) as asked:
        send(
            order("bea", ref=code, address=None),
            order("cy", ref=code, address=None),
            order("dee", codes=[code], address=None),
        )
    assert len(asked) == 1
    with transaction(store) as session:
        decided = {
            name: (r.status, r.reason)
            for r, name in session.execute(
                select(Referral, Customer.external_id).join(
                    Customer, Customer.id == Referral.referred_customer_id
                )
            )
        }
    assert decided == {name: (ReferralStatus.REWARDED, None) for name in ("bea", "cy", "dee")}


def test_a_referred_customers_later_orders_in_a_batch_look_for_no_referral(store, send, engine):
    # the first order naming a code decides the customer's referral; the batch knows then that
    # they have one, and their later orders (naming a code again) do not ask the database
    _, code = referrer_code(store, send)
    with referral_lookups(engine) as asked:
        send(
            order("bea", ref=code, address=None, order_id="801"),
            order("bea", ref=code, address=None, order_id="802"),
            order("bea", kind="order.fulfilled", codes=[code], address=None, order_id="802"),
        )
    assert len(asked) == 1
    decided = referral(store)  # the only one, on the first order (the second one exists)
    assert (decided.status, decided.reason) == (
        ReferralStatus.REFUSED,
        "not the customer's first order",
    )
