"""Consent from the platforms, through the real signed routes, processing and the send gate.

Shopify's consent topics (the only place a 2025-01+ webhook says a customer's marketing
consent), older payloads that still carry it, and WooCommerce, which never says: what each
leaves stored, what the trail records, and who then gets a marketing message.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from deliveries import fixture_bytes, fixture_json, inbox_rows
from fakes.fixtures import add_touchpoint
from sqlalchemy import select

from postpurchase.campaigns.config import load_campaigns
from postpurchase.demo.feed import build_feed
from postpurchase.demo.shop_payloads import SHOP as DEMO_SHOP
from postpurchase.events import CanonicalEvent, EventType
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Channel,
    ConsentChange,
    ConsentPurpose,
    ConsentState,
    Customer,
    Touchpoint,
    TouchpointStatus,
)

GRANTED, DENIED, UNKNOWN = ConsentState.GRANTED, ConsentState.DENIED, ConsentState.UNKNOWN
EMAIL_TOPIC = "customers_email_marketing_consent/update"
SMS_TOPIC = "customers_marketing_consent/update"
NOW = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # midday in Quebec and evening in Cologne
CUSTOMER = "7061234567853"  # the customer of shopify/orders_create.json


def _drain(store):
    process_inbox(
        store,
        load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
        worker="consent-test",
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: NOW,
    )


def _order_2025(**customer_changes):
    """orders/create as API 2025-01+ sends it: the customer carries no marketing consent."""
    order = fixture_json("shopify/orders_create.json")
    for name in ("email_marketing_consent", "sms_marketing_consent", "tags"):
        order["customer"].pop(name)
    order["customer"].update(customer_changes)
    return order


def _email_topic(state, consent_updated_at, customer_id=CUSTOMER):
    """The genuine sample body, about our customer, with another state and time."""
    body = fixture_json("genuine/shopify/customers_email_marketing_consent_update.json")
    body["customer_id"] = int(customer_id)
    body["email_marketing_consent"].update(state=state, consent_updated_at=consent_updated_at)
    return body


def _sms_topic(state, consent_updated_at, phone, customer_id=CUSTOMER):
    body = fixture_json("genuine/shopify/customers_marketing_consent_update.json")
    body.update(id=int(customer_id), phone=phone)
    body["sms_marketing_consent"].update(state=state, consent_updated_at=consent_updated_at)
    return body


def _customer(store, source="shopify", external_id=CUSTOMER):
    with store() as session:
        return session.execute(
            select(Customer).where(Customer.source == source, Customer.external_id == external_id)
        ).scalar_one()


def _trail(store, customer_id):
    with store() as session:
        return session.execute(
            select(
                ConsentChange.purpose,
                ConsentChange.from_state,
                ConsentChange.to_state,
                ConsentChange.source,
                ConsentChange.reference,
                ConsentChange.occurred_at,
            )
            .where(ConsentChange.customer_id == customer_id)
            .order_by(ConsentChange.id)
        ).all()


def test_genuine_consent_topic_samples_are_accepted_and_say_nothing_either_way(send, store):
    for topic, name in (
        (EMAIL_TOPIC, "customers_email_marketing_consent_update"),
        (SMS_TOPIC, "customers_marketing_consent_update"),
    ):
        response = send.shopify(topic, fixture_bytes(f"genuine/shopify/{name}.json"))
        assert response.status_code == 202, response.text

    rows = inbox_rows(store)
    events = [CanonicalEvent.model_validate(r.payload) for r in rows]
    assert [(r.topic, r.event_type, r.subject_id) for r in rows] == [
        (EMAIL_TOPIC, "customer.updated", "706405506930370084"),
        (SMS_TOPIC, "customer.updated", "706405506930370084"),
    ]
    # "not_subscribed" and a null state: the customer never said yes nor no.
    assert all(e.type is EventType.CUSTOMER_UPDATED for e in events)
    assert [e.customer.model_fields_set for e in events] == [{"external_id"}] * 2

    _drain(store)
    customer = _customer(store, external_id="706405506930370084")
    assert (
        customer.email_marketing_consent_state,
        customer.sms_marketing_consent_state,
        customer.sms_consent_state,
    ) == (UNKNOWN, UNKNOWN, UNKNOWN)
    assert customer.source_updated_at is None  # a consent topic is not a record version
    assert _trail(store, customer.id) == []


def test_consent_topics_move_consent_newest_first_and_keep_the_trail(send, store):
    assert send.shopify("orders/create", _order_2025()).status_code == 202
    _drain(store)
    customer = _customer(store)
    assert customer.email == "ines.moreau@example.com"
    assert customer.email_marketing_consent_state is UNKNOWN  # 2025-01: the order says nothing

    unsubscribed = _email_topic("unsubscribed", "2026-11-22T10:00:00-05:00")
    assert send.shopify(EMAIL_TOPIC, unsubscribed).status_code == 202
    sms = _sms_topic("subscribed", "2026-11-22T11:30:00-05:00", "+15145550142")
    assert send.shopify(SMS_TOPIC, sms).status_code == 202
    _drain(store)
    # Delivered late (a retry): an older "subscribed" must not undo the newer "no".
    stale = _email_topic("subscribed", "2026-11-21T10:00:00-05:00")
    assert send.shopify(EMAIL_TOPIC, stale).status_code == 202
    _drain(store)

    customer = _customer(store)
    assert customer.email_marketing_consent_state is DENIED
    assert customer.email_marketing_consent_source == "consent_topic"
    assert customer.email_marketing_consent_at == datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    assert customer.sms_marketing_consent_state is GRANTED
    assert customer.first_name == "Inès"  # the topics touch nothing but consent
    topics = [(r.topic, r.id) for r in inbox_rows(store)]
    (_, email_row), (_, sms_row) = topics[1:3]
    assert _trail(store, customer.id) == [
        (
            ConsentPurpose.EMAIL_MARKETING,
            UNKNOWN,
            DENIED,
            "consent_topic",
            f"inbox:{email_row}",
            datetime(2026, 11, 22, 15, 0, tzinfo=UTC),
        ),
        (
            ConsentPurpose.SMS_MARKETING,
            UNKNOWN,
            GRANTED,
            "consent_topic",
            f"inbox:{sms_row}",
            datetime(2026, 11, 22, 16, 30, tzinfo=UTC),
        ),
    ]

    # The customer subscribes again later: that newer yes counts.
    resubscribed = _email_topic("subscribed", "2026-11-24T08:00:00-05:00")
    assert send.shopify(EMAIL_TOPIC, resubscribed).status_code == 202
    _drain(store)
    assert _customer(store).email_marketing_consent_state is GRANTED
    assert [row[1:4] for row in _trail(store, customer.id)][-1] == (
        DENIED,
        GRANTED,
        "consent_topic",
    )


def test_older_api_payloads_still_carry_consent(send, store):
    # orders_create.json is a 2024-style payload: email "subscribed" (dated), SMS
    # "not_subscribed" (never said: unknown, not a "no").
    response = send.shopify("orders/create", fixture_bytes("shopify/orders_create.json"))
    assert response.status_code == 202
    _drain(store)

    customer = _customer(store)
    assert customer.email_marketing_consent_state is GRANTED
    assert customer.email_marketing_consent_source == "platform_payload"
    assert customer.email_marketing_consent_at == datetime(2025, 3, 2, 22, 41, 12, tzinfo=UTC)
    assert customer.sms_marketing_consent_state is UNKNOWN
    assert [row[:4] for row in _trail(store, customer.id)] == [
        (ConsentPurpose.EMAIL_MARKETING, UNKNOWN, GRANTED, "platform_payload")
    ]


def _dispatch(store, make_dispatcher, customer_id, campaign, channel, rule):
    """Plan one ``campaign`` message due now for the customer and run the dispatcher on it
    (with the shop's rule for unknown email consent); returns the touchpoint."""
    with transaction(store) as session:
        tp = add_touchpoint(
            session, session.get(Customer, customer_id), None, campaign, channel, NOW
        )
        claim_due_touchpoints(session, worker="w", now=NOW, limit=100, lease=timedelta(minutes=5))
    make_dispatcher(NOW, email_marketing=rule).run_chunk("w", [tp.id])
    with store() as session:
        return session.get(Touchpoint, tp.id)


@pytest.mark.parametrize(
    ("rule", "outcome"),
    [
        ("opt_out", (TouchpointStatus.SENT, None)),
        (
            "opt_in",
            (TouchpointStatus.SKIPPED, "no email marketing consent (opt-in required)"),
        ),
    ],
)
def test_woocommerce_customers_get_marketing_email_unless_the_shop_requires_opt_in(
    send, store, make_dispatcher, fake_sendgrid, rule, outcome
):
    order = fixture_json("woocommerce/order_processing.json")
    assert send.woocommerce("order.created", order).status_code == 202
    _drain(store)
    customer = _customer(store, "woocommerce", "guest:jonas.becker@example.de")
    assert customer.email_marketing_consent_state is UNKNOWN

    tp = _dispatch(store, make_dispatcher, customer.id, "win_back", Channel.EMAIL, rule)

    assert (tp.status, tp.reason) == outcome
    sent_to = [m["personalizations"][0]["to"][0]["email"] for m in fake_sendgrid.sent]
    assert sent_to == (["jonas.becker@example.de"] if rule == "opt_out" else [])


@pytest.mark.parametrize("rule", ["opt_out", "opt_in"])
def test_sms_marketing_never_goes_without_a_yes(send, store, make_dispatcher, fake_twilio, rule):
    assert send.shopify("orders/create", _order_2025()).status_code == 202
    _drain(store)
    customer = _customer(store)
    assert customer.phone == "+15145550142"

    refused = _dispatch(store, make_dispatcher, customer.id, "win_back", Channel.SMS, rule)
    assert (refused.status, refused.reason) == (
        TouchpointStatus.SKIPPED,
        "no SMS marketing consent",
    )

    sms = _sms_topic("subscribed", "2026-11-26T09:00:00-05:00", "+15145550142")
    assert send.shopify(SMS_TOPIC, sms).status_code == 202
    _drain(store)
    sent = _dispatch(store, make_dispatcher, customer.id, "vip_welcome", Channel.SMS, rule)
    assert sent.status is TouchpointStatus.SENT
    assert [m["To"] for m in fake_twilio.sent] == ["+15145550142"]


def test_demo_feed_reaches_customers_who_never_answered_and_not_those_who_said_no(
    send, store, make_dispatcher, fake_sendgrid
):
    """The demo shop's month, replayed through the signed route: consent only through the
    consent topics, and review requests go out to customers with unknown consent too."""
    feed = build_feed(orders=80, now=NOW, seed=7)
    for delivery in feed:
        response = send.shopify(
            delivery.topic,
            delivery.body,
            shop=DEMO_SHOP,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
        )
        assert response.status_code == 202, response.text
    _drain(store)
    with transaction(store) as session:
        ids = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=1000, lease=timedelta(minutes=5)
        )
    make_dispatcher(NOW).run_chunk("w", ids)

    with store() as session:
        rows = session.execute(
            select(Touchpoint.status, Touchpoint.reason, Customer.email_marketing_consent_state)
            .join(Customer, Customer.id == Touchpoint.customer_id)
            .where(Touchpoint.campaign_id == "review_request", Touchpoint.id.in_(ids))
        ).all()
        states = Counter(session.execute(select(Customer.email_marketing_consent_state)).scalars())
    assert states[UNKNOWN] and states[GRANTED] and states[DENIED]
    sent = Counter(state for status, _, state in rows if status is TouchpointStatus.SENT)
    assert sent[UNKNOWN] > 0 and sent[GRANTED] > 0
    assert sent[DENIED] == 0
    assert {reason for _, reason, state in rows if state is DENIED} <= {
        "email marketing consent denied"
    }


def test_the_shops_own_system_states_consent_on_the_customers_word(send, store):
    """A generic event (the shop's system) says yes to order texts and no to marketing email;
    an earlier-dated event arriving after it does not undo that."""

    def event(event_id, updated_at, **consent):
        return {
            "id": event_id,
            "shop": "tea-house.example",
            "type": "customer.updated",
            "occurred_at": updated_at,
            "customer": {
                "external_id": "c-77",
                "email": "mia@example.org",
                "updated_at": updated_at,
                **consent,
            },
        }

    first = event(
        "e1", "2026-11-27T10:00:00+01:00", sms_consent=True, email_marketing_consent=False
    )
    older = event("e2", "2026-11-26T10:00:00+01:00", email_marketing_consent=True)
    for body in (first, older):
        assert send.generic(body).status_code == 202
        _drain(store)

    customer = _customer(store, "generic", "c-77")
    assert (customer.sms_consent_state, customer.email_marketing_consent_state) == (
        GRANTED,
        DENIED,
    )
    assert [row[:4] for row in _trail(store, customer.id)] == [
        (ConsentPurpose.EMAIL_MARKETING, UNKNOWN, DENIED, "shop"),
        (ConsentPurpose.SMS, UNKNOWN, GRANTED, "shop"),
    ]
