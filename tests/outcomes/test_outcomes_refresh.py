"""The outcome refresh: scanners, attribution windows, last touch, refunds, holdout buyers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from outcome_data import T0, customers, event, order, touchpoint
from sqlalchemy import select, update

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.outcomes.refresh import refresh_outcomes
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    AttributedOrder,
    CampaignDay,
    Channel,
    Order,
    TouchpointOutcome,
)

S = timedelta(seconds=1)
CONFIG = CampaignConfig.model_validate(
    {
        "campaigns": [
            {
                "id": "review_request",
                "description": "Ask for a review.",
                "trigger": "order.delivered",
                "channels": ["email", "sms"],
                "template": "review_request",
                "consent": "marketing",
                "holdout": "10%",
            },
            {
                "id": "win_back",
                "description": "Come back.",
                "trigger": "customer.lapsed",
                "channels": ["email"],
                "template": "win_back",
                "consent": "marketing",
                "attribution": {"email": "2d"},
            },
        ]
    }
)
NOW = T0 + timedelta(days=30)


def _refresh(store):
    with transaction(store) as session:
        return refresh_outcomes(session, CONFIG, since=T0 - timedelta(days=1), now=NOW)


def _outcomes(store):
    with store() as session:
        return {o.touchpoint_id: o for o in session.scalars(select(TouchpointOutcome))}


def test_scanner_clicks_are_counted_apart_and_people_are_counted(store):
    with transaction(store) as session:
        ids = customers(session, 5)
        head, early, after_delivery, burst, person = (touchpoint(session, c) for c in ids)
        event(session, head, "click", T0 + timedelta(hours=2), provider="redirect", method="HEAD")
        event(session, early, "click", T0 + 3 * S, url="https://shop.example.com/a")
        event(session, after_delivery, "delivered", T0 + timedelta(hours=1))
        event(session, after_delivery, "click", T0 + timedelta(hours=1) + 4 * S, url="https://a")
        for n, url in enumerate(["https://a", "https://b", "https://c"]):
            event(session, burst, "click", T0 + timedelta(minutes=30) + n * S / 2, url=url)
        event(session, person, "delivered", T0 + 2 * S)
        event(session, person, "open", T0 + timedelta(minutes=5))
        event(session, person, "click", T0 + 5 * S, url="https://a")  # a scanner first
        event(session, person, "click", T0 + timedelta(minutes=9), url="https://a", method="GET")

    _refresh(store)

    outcomes = _outcomes(store)
    assert [outcomes[t].first_click_at for t in (head, early, after_delivery, burst)] == [None] * 4
    assert [outcomes[t].scanner_clicks for t in (head, early, after_delivery, burst)] == [
        1,
        1,
        1,
        3,
    ]
    assert outcomes[person].first_click_at == T0 + timedelta(minutes=9)
    assert (outcomes[person].delivered, outcomes[person].opened) == (True, True)
    with store() as session:
        day = session.scalars(select(CampaignDay)).one()
    assert (day.planned, day.sent, day.delivered, day.opened, day.clicked) == (5, 5, 2, 1, 1)
    assert day.scanner_clicks == 7


def _clicked(session, customer, *, at, channel=Channel.EMAIL, campaign="review_request"):
    tp = touchpoint(
        session, customer, sent_at=at - timedelta(hours=1), channel=channel, campaign=campaign
    )
    event(session, tp, "click", at, provider="redirect", url="https://shop.example.com/")
    return tp


def test_orders_are_attributed_within_the_window_edges_only(store):
    with transaction(store) as session:
        a, b, c, d, e = customers(session, 5)
        click = T0 + timedelta(hours=1)
        _clicked(session, a, at=click)
        _clicked(session, b, at=click)
        _clicked(session, c, at=click, channel=Channel.SMS)
        _clicked(session, d, at=click, channel=Channel.SMS)
        _clicked(session, e, at=click, campaign="win_back")  # its own 2-day window
        on_edge = order(session, a, click + timedelta(days=5))
        order(session, b, click + timedelta(days=5) + S)
        sms_edge = order(session, c, click + timedelta(days=1))
        order(session, d, click + timedelta(days=1) + S)
        order(session, e, click + timedelta(days=2) + S)
        order(session, a, click - S)  # before the click: not the message's

    _refresh(store)

    with store() as session:
        attributed = set(session.scalars(select(AttributedOrder.order_id)))
    assert attributed == {on_edge, sms_edge}


def test_the_last_click_before_the_order_takes_it(store):
    with transaction(store) as session:
        (customer,) = customers(session, 1)
        _clicked(session, customer, at=T0, campaign="win_back")
        latest = _clicked(session, customer, at=T0 + timedelta(days=1))
        _clicked(session, customer, at=T0 + timedelta(days=3), campaign="win_back")  # after
        paid = order(session, customer, T0 + timedelta(days=1, hours=2))

    _refresh(store)

    with store() as session:
        row = session.scalars(select(AttributedOrder)).one()
    assert (row.order_id, row.touchpoint_id, row.campaign_id) == (paid, latest, "review_request")


def test_refunds_take_revenue_back_and_a_second_refresh_changes_nothing(store):
    with transaction(store) as session:
        (customer,) = customers(session, 1)
        _clicked(session, customer, at=T0)
        paid = order(session, customer, T0 + timedelta(hours=3), "80.00", refunded="30.00")

    first = _refresh(store)
    with store() as session:
        assert session.get(AttributedOrder, paid).revenue == Decimal("50.00")
    with transaction(store) as session:
        session.execute(update(Order).where(Order.id == paid).values(refunded_amount=Decimal("80")))
    _refresh(store)
    second = _refresh(store)

    assert (first.attributed, second.attributed, second.currency) == (1, 1, "EUR")
    with store() as session:
        assert session.get(AttributedOrder, paid).revenue == Decimal("0")
        day = session.scalars(select(CampaignDay)).one()
    assert (day.converted, day.revenue) == (1, Decimal("0"))


def test_holdout_customers_orders_count_the_same_way_for_the_comparison(store):
    with transaction(store) as session:
        ids = customers(session, 4)
        treated = [touchpoint(session, c) for c in ids[:2]]
        held = [touchpoint(session, c, arm="holdout") for c in ids[2:]]
        order(session, ids[0], T0 + timedelta(days=2), "40.00")  # bought, no click
        order(session, ids[2], T0 + timedelta(days=4), "60.00")  # held out, bought
        order(session, ids[3], T0 + timedelta(days=6), "60.00")  # held out, after the window
        touchpoint(session, ids[0], step=1, sent_at=T0 + timedelta(days=5))  # reminder: no unit

    _refresh(store)

    with store() as session:
        days = {
            (r.arm, r.day): (r.planned, r.held_out, r.sent, r.recipients, r.buyers, r.buyer_revenue)
            for r in session.scalars(select(CampaignDay))
        }
    assert treated and held
    assert days == {
        ("treatment", "2026-11-02"): (2, 0, 2, 2, 1, Decimal("40.00")),
        ("treatment", "2026-11-07"): (1, 0, 1, 0, 0, Decimal("0")),
        ("holdout", "2026-11-02"): (2, 2, 0, 2, 1, Decimal("60.00")),
    }


def test_a_late_send_does_not_move_its_arm_window_against_the_holdout(store):
    with transaction(store) as session:
        late, held = customers(session, 2)
        touchpoint(session, late, due_at=T0, sent_at=T0 + timedelta(days=3))  # after an outage
        touchpoint(session, held, arm="holdout")  # due at T0, never sent
        for customer in (late, held):
            order(session, customer, T0 + timedelta(days=1))  # before the late send

    _refresh(store)

    with store() as session:
        rows = {
            r.arm: (r.day, r.recipients, r.buyers) for r in session.scalars(select(CampaignDay))
        }
        outcome = session.scalars(
            select(TouchpointOutcome).where(TouchpointOutcome.customer_id == late)
        ).one()
    # both counted from when they were due, in the same day's row
    assert rows == {"treatment": ("2026-11-02", 1, 1), "holdout": ("2026-11-02", 1, 1)}
    assert (outcome.moment, outcome.due_at) == (T0 + timedelta(days=3), T0)
