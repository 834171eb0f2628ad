"""The consent rules on their own: who may get what, which statement wins, and the trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes.fixtures import add_customer
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DatabaseError

from postpurchase import consent
from postpurchase.consent import Statement, consent_reason
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    ConsentChange,
    ConsentPurpose,
    ConsentState,
    Customer,
)

GRANTED, DENIED, UNKNOWN = ConsentState.GRANTED, ConsentState.DENIED, ConsentState.UNKNOWN
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _customer(email=UNKNOWN, sms=UNKNOWN, sms_marketing=UNKNOWN):
    return Customer(
        email_marketing_consent_state=email,
        sms_consent_state=sms,
        sms_marketing_consent_state=sms_marketing,
    )


@pytest.mark.parametrize(
    ("state", "opt_out", "opt_in"),
    [
        (GRANTED, None, None),
        (UNKNOWN, None, "no email marketing consent (opt-in required)"),
        (DENIED, "email marketing consent denied", "email marketing consent denied"),
    ],
)
def test_marketing_email_follows_the_shops_rule_for_unknown(state, opt_out, opt_in):
    customer = _customer(email=state)
    assert consent_reason(customer, Channel.EMAIL, "marketing", email_marketing="opt_out") == (
        opt_out
    )
    assert consent_reason(customer, Channel.EMAIL, "marketing", email_marketing="opt_in") == (
        opt_in
    )
    # order emails need no marketing consent, whatever the rule
    for rule in ("opt_out", "opt_in"):
        assert (
            consent_reason(customer, Channel.EMAIL, "transactional", email_marketing=rule) is None
        )


@pytest.mark.parametrize("rule", ["opt_out", "opt_in"])
@pytest.mark.parametrize(
    ("sms", "marketing", "order_texts", "offers"),
    [
        (UNKNOWN, UNKNOWN, False, False),
        (UNKNOWN, GRANTED, True, True),  # a yes to offers by text covers texts about orders
        (GRANTED, UNKNOWN, True, False),  # SMS marketing is never sent on an unknown
        (GRANTED, DENIED, True, False),
        (DENIED, GRANTED, False, False),  # a "no" to texts is a no to offers too
        (UNKNOWN, DENIED, False, False),
    ],
)
def test_sms_needs_a_yes_whatever_the_email_rule(rule, sms, marketing, order_texts, offers):
    customer = _customer(sms=sms, sms_marketing=marketing)
    transactional = consent_reason(customer, Channel.SMS, "transactional", email_marketing=rule)
    promotional = consent_reason(customer, Channel.SMS, "marketing", email_marketing=rule)
    assert (transactional is None, promotional is None) == (order_texts, offers)


def _trail(store, customer_id):
    with store() as session:
        return session.execute(
            select(ConsentChange.from_state, ConsentChange.to_state, ConsentChange.source)
            .where(ConsentChange.customer_id == customer_id)
            .order_by(ConsentChange.id)
        ).all()


def _say(store, customer_id, *statements):
    with transaction(store) as session:
        customer = session.get(Customer, customer_id)
        consent.apply_all(session, [customer], list(statements))


def _email(store, customer_id):
    with store() as session:
        c = session.get(Customer, customer_id)
        return c.email_marketing_consent_state, c.email_marketing_consent_source


def test_a_stale_statement_never_overwrites_a_newer_one(store):
    with transaction(store) as session:
        customer = add_customer(session, email_marketing_consent_state=UNKNOWN)
    purpose = ConsentPurpose.EMAIL_MARKETING

    _say(store, customer.id, Statement(purpose, DENIED, T0, consent.CONSENT_TOPIC, "inbox:2"))
    older_yes = Statement(purpose, GRANTED, T0 - timedelta(days=1), consent.CONSENT_TOPIC)
    _say(store, customer.id, older_yes)

    assert _email(store, customer.id) == (DENIED, "consent_topic")
    assert _trail(store, customer.id) == [(UNKNOWN, DENIED, "consent_topic")]


def test_a_no_outlives_a_yes_that_does_not_say_when_it_was_given(store):
    """An unsubscribe from our own link, then an order webhook whose customer still reads
    "subscribed" without saying when: that is the old answer re-sent, not a new yes. A dated,
    newer yes (the customer subscribed again in the shop) does count."""
    with transaction(store) as session:
        customer = add_customer(session, email_marketing_consent_state=GRANTED)
    purpose = ConsentPurpose.EMAIL_MARKETING
    unsubscribe = Statement(purpose, DENIED, T0, consent.UNSUBSCRIBE_PAGE, "touchpoint:5")
    _say(store, customer.id, unsubscribe)

    resent = Statement(
        purpose, GRANTED, T0 + timedelta(hours=2), consent.PLATFORM_PAYLOAD, dated=False
    )
    _say(store, customer.id, resent)
    assert _email(store, customer.id) == (DENIED, "unsubscribe_page")

    again = Statement(purpose, GRANTED, T0 + timedelta(days=3), consent.CONSENT_TOPIC)
    _say(store, customer.id, again)
    assert _email(store, customer.id) == (GRANTED, "consent_topic")
    assert _trail(store, customer.id) == [
        (GRANTED, DENIED, "unsubscribe_page"),
        (DENIED, GRANTED, "consent_topic"),
    ]


def test_restating_the_same_answer_writes_no_trail_row_but_becomes_the_latest_word(store):
    with transaction(store) as session:
        customer = add_customer(session, email_marketing_consent_state=UNKNOWN)
    purpose = ConsentPurpose.EMAIL_MARKETING
    _say(store, customer.id, Statement(purpose, DENIED, T0, consent.CONSENT_TOPIC))
    later = T0 + timedelta(hours=1)
    _say(store, customer.id, Statement(purpose, DENIED, later, consent.UNSUBSCRIBE_PAGE))

    with store() as session:
        stored = session.get(Customer, customer.id)
        assert (stored.email_marketing_consent_source, stored.email_marketing_consent_at) == (
            "unsubscribe_page",
            later,
        )
    assert len(_trail(store, customer.id)) == 1


def test_the_trail_is_append_only_in_the_database(store):
    with transaction(store) as session:
        customer = add_customer(session, email_marketing_consent_state=UNKNOWN)
    statement = Statement(ConsentPurpose.EMAIL_MARKETING, GRANTED, T0, consent.SHOP, "inbox:1")
    _say(store, customer.id, statement)

    for change in (
        update(ConsentChange).values(to_state=DENIED),
        delete(ConsentChange),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction(store) as session:
            session.execute(change)
    assert _trail(store, customer.id) == [(UNKNOWN, GRANTED, "shop")]


@pytest.mark.parametrize("held", [DENIED, "denied"])
def test_a_state_held_as_its_text_is_read_as_its_member(held):
    """A row whose state was set as text (not yet flushed) moves as one holding the member."""
    customer = _customer(email=held)
    changes: list[dict] = []
    purpose = ConsentPurpose.EMAIL_MARKETING
    undated_yes = Statement(purpose, GRANTED, T0, consent.PLATFORM_PAYLOAD, dated=False)
    assert not consent.apply(customer, undated_yes, changes)
    assert consent.apply(customer, Statement(purpose, GRANTED, T0, consent.CONSENT_TOPIC), changes)
    assert [(c["from_state"], c["to_state"]) for c in changes] == [(DENIED, GRANTED)]
    assert changes[0]["from_state"] is DENIED
