"""Planning from the shipped campaigns: what an order's journey gets, and when."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from event_journeys import at, order_event, put, touchpoints
from sqlalchemy import select, update

from postpurchase.messages.context import LoyaltyFigures, ShopProfile, build_context
from postpurchase.processing.drain import process_batch, process_inbox
from postpurchase.processing.followups import plan_assumed_deliveries, plan_lapsed_customers
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    ClaimStatus,
    Customer,
    InboxEvent,
    Order,
    Touchpoint,
    TouchpointStatus,
)

UTC_ZONE = ZoneInfo("UTC")

JOURNEY = [
    ("order.placed", "2026-03-01T15:00:00+00:00"),
    ("order.paid", "2026-03-01T15:01:00+00:00"),
    ("order.fulfilled", "2026-03-03T14:00:00+00:00"),
    # Friday 12:00 in New York (EST); the clocks go forward on Sunday 8 March.
    ("order.delivered", "2026-03-06T17:00:00+00:00"),
]


def _journey(**kwargs):
    return [order_event(kind, moment, **kwargs) for kind, moment in JOURNEY]


def _planned(store):
    return [
        (c, s, ch, due) for c, s, ch, due, status, _ in touchpoints(store) if status == "planned"
    ]


def test_a_delivered_order_gets_each_campaign_at_local_times_across_dst(store, drain):
    put(store, *_journey())

    summary = drain()

    assert summary.events == {
        "order.placed": 1,
        "order.paid": 1,
        "order.fulfilled": 1,
        "order.delivered": 1,
    }
    assert summary.failed == 0
    assert _planned(store) == [
        # 1 calendar day later at the same New York wall-clock time: 12:00 EST.
        ("delivery_checkin", 0, "email", at("2026-03-07T12:00:00-05:00")),
        # No send window: five minutes after payment.
        ("points_earned", 0, "email", at("2026-03-01T15:06:00+00:00")),
        # After the switch to EDT the same 12:00 local is one hour earlier in UTC.
        ("review_request", 0, "email", at("2026-03-13T12:00:00-04:00")),
        ("review_request", 1, "email", at("2026-03-18T12:00:00-04:00")),
        ("setup_tips", 0, "email", at("2026-03-09T12:00:00-04:00")),
    ]
    assert summary.planned == 5


def test_send_window_moves_an_evening_delivery_to_the_next_morning_local(store, drain):
    # Delivered Saturday 7 March 21:30 EST: the check-in (1 day later) would be Sunday 21:30,
    # after the window closes, so it moves to Monday 10:00, which is EDT by then.
    put(store, order_event("order.delivered", "2026-03-08T02:30:00+00:00"))

    drain()

    due = {c: d for c, s, ch, d in _planned(store) if s == 0}
    assert due["delivery_checkin"] == at("2026-03-09T10:00:00-04:00")


def test_customers_in_other_zones_get_their_own_local_times(store, drain):
    moment = "2026-03-06T17:00:00+00:00"
    put(
        store,
        order_event(
            "order.delivered", moment, order_id="1", customer_id="tokyo", time_zone="Asia/Tokyo"
        ),
        order_event(
            "order.delivered",
            moment,
            order_id="2",
            customer_id="la",
            time_zone="America/Los_Angeles",
        ),
        order_event("order.delivered", moment, order_id="3", customer_id="nowhere", time_zone=None),
    )

    drain()

    with store() as session:
        due = {
            subject_customer: due_at
            for subject_customer, due_at in session.execute(
                select(Order.external_id, Touchpoint.due_at)
                .join(Order, Order.id == Touchpoint.order_id)
                .where(Touchpoint.campaign_id == "delivery_checkin")
            )
        }
    # Tokyo: delivered 02:00 Sat, +1 day = 02:00 Sun, before the window: 10:00 Sun local.
    assert due["1"] == at("2026-03-08T10:00:00+09:00")
    # Los Angeles: delivered 09:00 Fri, +1 day = 09:00 Sat: window opens at 10:00.
    assert due["2"] == at("2026-03-07T10:00:00-08:00")
    # No zone: the shop's (UTC here): 17:00 Sat is inside 10:00-19:00.
    assert due["3"] == at("2026-03-07T17:00:00+00:00")


def test_conditions_select_campaigns(store, drain):
    put(
        store,
        order_event("order.delivered", JOURNEY[3][1], order_id="7", product_type="apparel"),
        order_event("order.paid", JOURNEY[1][1], order_id="8", total="0.00"),
    )

    # without a loyalty programme nothing earns points, not even a first order
    summary = drain(loyalty=False)

    campaigns = {c for c, *_ in _planned(store)}
    assert "setup_tips" not in campaigns  # apparel needs no setup
    assert "points_earned" not in campaigns
    assert (
        summary.skipped[
            'setup_tips: condition not met: "electronics" in order.product_types '
            'or "appliances" in order.product_types'
        ]
        == 1
    )


def test_sms_is_the_fallback_channel_when_there_is_no_email(store, drain):
    put(store, order_event("order.delivered", JOURNEY[3][1], email=None, phone="+12125550123"))

    summary = drain()

    planned = _planned(store)
    assert [(c, s, ch) for c, s, ch, _ in planned] == [
        ("review_request", 0, "sms"),
        ("review_request", 1, "sms"),
    ]
    assert summary.skipped["delivery_checkin: the customer has no email"] == 1


def test_tier_upgrade_to_vip_plans_a_welcome(store, drain):
    customer = {"external_id": "c-77", "email": "mara@example.com", "time_zone": "America/New_York"}
    upgrade = {
        "type": "tier.changed",
        "occurred_at": "2026-03-10T03:00:00+00:00",
        "customer": customer,
        "tier": {"from_tier": "gold", "to_tier": "vip"},
    }
    sideways = dict(upgrade, tier={"from_tier": "member", "to_tier": "gold"})
    put(store, upgrade, sideways, source="internal")

    drain()

    with store() as session:
        rows = session.execute(select(Touchpoint.subject_key, Touchpoint.due_at)).all()
    # 1 hour later is 00:00 local (EDT): the window opens at 10:00 that morning.
    assert len(rows) == 1
    assert rows[0].subject_key.endswith(":vip:2026-03-10")
    assert rows[0].due_at == at("2026-03-10T10:00:00-04:00")


def test_refund_before_the_review_request_cancels_it(store, drain):
    put(store, *_journey())
    drain()
    refund = order_event(
        "order.refunded",
        "2026-03-10T12:00:00+00:00",
        refund={"external_id": "r-1", "amount": "249.00", "currency": "USD"},
    )
    put(store, refund)

    summary = drain()

    by_campaign = {(c, s): (status, reason) for c, s, _, _, status, reason in touchpoints(store)}
    assert by_campaign[("review_request", 0)] == ("cancelled", "cancelled by order.refunded")
    assert by_campaign[("review_request", 1)] == ("cancelled", "cancelled by order.refunded")
    # Check-in and setup tips are cancelled by a refund too; points are not.
    assert by_campaign[("points_earned", 0)] == ("planned", None)
    assert summary.cancelled == 4


def test_refund_after_the_request_was_sent_cancels_nothing_sent(store, drain):
    put(store, *_journey())
    drain()
    with transaction(store) as session:
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.campaign_id.in_(["review_request", "delivery_checkin", "setup_tips"]))
            .where(Touchpoint.step == 0)
            .values(status=TouchpointStatus.SENT, sent_at=at("2026-03-13T16:00:00+00:00"))
        )
    refund = order_event(
        "order.refunded",
        "2026-03-14T09:00:00+00:00",
        refund={"external_id": "r-1", "amount": "249.00", "currency": "USD"},
    )
    put(store, refund)

    drain()

    by_campaign = {(c, s): status for c, s, _, _, status, _ in touchpoints(store)}
    assert by_campaign[("review_request", 0)] == "sent"
    assert by_campaign[("delivery_checkin", 0)] == "sent"
    assert by_campaign[("setup_tips", 0)] == "sent"
    # The reminder was still to come: a refunded order gets no more review requests.
    assert by_campaign[("review_request", 1)] == "cancelled"


def test_a_submitted_review_stops_the_reminder(store, drain):
    put(store, *_journey())
    drain()
    with transaction(store) as session:
        session.execute(
            update(Touchpoint)
            .where(Touchpoint.campaign_id == "review_request", Touchpoint.step == 0)
            .values(status=TouchpointStatus.SENT)
        )
    put(store, order_event("review.submitted", "2026-03-14T20:00:00+00:00", review={"rating": 5}))

    drain()

    by_campaign = {(c, s): (status, reason) for c, s, _, _, status, reason in touchpoints(store)}
    assert by_campaign[("review_request", 1)] == ("cancelled", "cancelled by review.submitted")
    assert by_campaign[("review_request", 0)] == ("sent", None)
    assert by_campaign[("delivery_checkin", 0)] == ("planned", None)


def test_events_that_arrive_after_the_refund_plan_nothing_moot(store, drain):
    # The refund is processed before the delivery (late carrier webhook): no review request.
    refund = order_event(
        "order.refunded",
        "2026-03-05T12:00:00+00:00",
        refund={"external_id": "r-9", "amount": "20.00", "currency": "USD"},
    )
    put(store, refund)
    drain()
    put(store, order_event("order.delivered", JOURNEY[3][1]))

    summary = drain()

    assert {c for c, *_ in _planned(store)} == set()
    assert summary.skipped["review_request: order.refunded already happened"] == 1


def test_delivery_fallback_assumes_delivery_after_the_configured_days(store, drain, campaigns):
    put(store, *_journey()[:3])  # placed, paid, fulfilled 3 March 14:00 UTC; never delivered
    drain()
    with transaction(store) as session:
        early = plan_assumed_deliveries(
            session, campaigns, now=at("2026-03-13T13:59:00+00:00"), shop_zone=UTC_ZONE
        )
    assert early[0] == 0

    with transaction(store) as session:
        assumed, counts = plan_assumed_deliveries(
            session, campaigns, now=at("2026-03-14T08:00:00+00:00"), shop_zone=UTC_ZONE
        )
    with transaction(store) as session:
        again, _ = plan_assumed_deliveries(
            session, campaigns, now=at("2026-03-15T08:00:00+00:00"), shop_zone=UTC_ZONE
        )

    assert (assumed, counts.planned, again) == (1, 4, 0)
    with store() as session:
        assert session.scalar(select(Order.delivered_at)) == at("2026-03-13T14:00:00+00:00")
    due = {(c, s): d for c, s, ch, d in _planned(store)}
    # Assumed delivered 13 March 10:00 New York (EDT): check-in the next day at 10:00.
    assert due[("delivery_checkin", 0)] == at("2026-03-14T10:00:00-04:00")
    # A real delivery report arriving later plans nothing twice.
    put(store, order_event("order.delivered", "2026-03-16T15:00:00+00:00"))
    assert drain().planned == 0


def test_orders_long_past_their_fallback_get_no_stale_messages(store, drain, campaigns):
    put(store, *_journey()[:3])  # fulfilled 3 March, never delivered; first seen in May
    drain()
    with transaction(store) as session:
        assumed, counts = plan_assumed_deliveries(
            session, campaigns, now=at("2026-05-01T08:00:00+00:00"), shop_zone=UTC_ZONE
        )
    assert (assumed, counts.planned) == (0, 0)


def test_win_back_after_sixty_days_without_an_order_and_cancelled_by_a_new_one(
    store, drain, campaigns
):
    put(
        store,
        order_event(
            "order.paid",
            "2026-01-01T15:00:00+00:00",
            order_id="old",
            placed_at="2026-01-01T15:00:00+00:00",
        ),
    )
    drain()
    now = at("2026-03-03T08:00:00+00:00")
    with transaction(store) as session:
        first = plan_lapsed_customers(session, campaigns, now=now, shop_zone=UTC_ZONE)
    with transaction(store) as session:
        second = plan_lapsed_customers(
            session, campaigns, now=now + timedelta(hours=1), shop_zone=UTC_ZONE
        )

    assert (first.planned, second.planned) == (1, 0)
    # 60 calendar days after 10:00 EST on 1 January, inside the window: 10:00 EST on 2 March.
    assert [p for p in _planned(store) if p[0] == "win_back"] == [
        ("win_back", 0, "email", at("2026-03-02T10:00:00-05:00"))
    ]

    put(
        store,
        order_event(
            "order.placed",
            "2026-03-03T09:00:00+00:00",
            order_id="new",
            placed_at="2026-03-03T09:00:00+00:00",
        ),
    )
    drain()
    assert [
        (c, status, reason) for c, _, _, _, status, reason in touchpoints(store) if c == "win_back"
    ] == [("win_back", "cancelled", "cancelled by order.placed")]


def test_no_win_back_while_a_newer_order_exists(store, drain, campaigns):
    put(
        store,
        order_event(
            "order.paid",
            "2026-01-01T15:00:00+00:00",
            order_id="old",
            placed_at="2026-01-01T15:00:00+00:00",
        ),
        order_event(
            "order.paid",
            "2026-02-20T15:00:00+00:00",
            order_id="newer",
            placed_at="2026-02-20T15:00:00+00:00",
        ),
    )
    drain()
    with transaction(store) as session:
        counts = plan_lapsed_customers(
            session, campaigns, now=at("2026-03-03T08:00:00+00:00"), shop_zone=UTC_ZONE
        )
    assert counts.planned == 0


def test_win_back_counts_only_paid_orders_that_were_not_cancelled(store, drain, campaigns):
    """An order left unpaid and one paid then cancelled are no purchase: the customer's last
    purchase is still the paid order of 1 January, and it alone starts the win-back."""
    put(
        store,
        order_event(
            "order.paid",
            "2026-01-01T15:00:00+00:00",
            order_id="bought",
            placed_at="2026-01-01T15:00:00+00:00",
        ),
        order_event(
            "order.placed",
            "2026-01-10T15:00:00+00:00",
            order_id="never-paid",
            placed_at="2026-01-10T15:00:00+00:00",
        ),
        order_event(
            "order.paid",
            "2026-01-12T15:00:00+00:00",
            order_id="called-off",
            placed_at="2026-01-12T15:00:00+00:00",
        ),
        order_event(
            "order.cancelled",
            "2026-01-13T15:00:00+00:00",
            order_id="called-off",
            placed_at="2026-01-12T15:00:00+00:00",
        ),
    )
    drain()
    with transaction(store) as session:
        counts = plan_lapsed_customers(
            session, campaigns, now=at("2026-03-03T08:00:00+00:00"), shop_zone=UTC_ZONE
        )
    assert counts.planned == 1
    [(campaign, _, _, due_at, status, _)] = [t for t in touchpoints(store) if t[0] == "win_back"]
    assert (campaign, status, due_at) == ("win_back", "planned", at("2026-03-02T10:00:00-05:00"))


def test_processing_twice_gives_the_same_touchpoints(store, drain):
    payloads = _journey()
    put(store, *payloads)
    drain()
    first = touchpoints(store)

    put(store, *payloads)  # every event delivered a second time
    summary = drain()

    assert touchpoints(store) == first
    assert summary.planned == 0 and sum(summary.events.values()) == 4


def test_out_of_order_events_end_in_the_same_state(store, drain):
    in_order = [order_event(k, t, order_id="A", customer_id="a") for k, t in JOURNEY]
    reversed_ = [order_event(k, t, order_id="B", customer_id="b") for k, t in reversed(JOURNEY)]
    put(store, *in_order)
    put(store, *reversed_[:1])  # delivered arrives alone first, in a batch of its own
    drain()
    put(store, *reversed_[1:])
    drain()

    with store() as session:
        orders = {o.external_id: o for o in session.scalars(select(Order))}
        plans = session.execute(
            select(Order.external_id, Touchpoint.campaign_id, Touchpoint.step, Touchpoint.due_at)
            .join(Order, Order.id == Touchpoint.order_id)
            .order_by(Touchpoint.campaign_id, Touchpoint.step)
        ).all()
    columns = ("placed_at", "paid_at", "fulfilled_at", "delivered_at", "total", "name")
    assert [getattr(orders["A"], c) for c in columns[:4]] == [
        getattr(orders["B"], c) for c in columns[:4]
    ]
    assert orders["B"].name == "#B"
    assert [p[1:] for p in plans if p[0] == "A"] == [p[1:] for p in plans if p[0] == "B"]
    assert len([p for p in plans if p[0] == "A"]) == 5


def test_a_bad_row_fails_with_its_reason_and_does_not_block_the_others(store, drain):
    good = put(store, *_journey())
    bad = put(store, {"type": "order.paid", "order": {"external_id": "x"}})

    summary = drain()

    with store() as session:
        rows = {r.id: r for r in session.scalars(select(InboxEvent))}
    assert all(rows[i].status is ClaimStatus.DONE for i in good)
    assert rows[bad[0]].status is ClaimStatus.FAILED
    assert "not a canonical event: occurred_at: Field required" in rows[bad[0]].last_error
    assert summary.failed == 1 and summary.planned == 5


def test_a_row_that_keeps_failing_is_marked_failed_after_a_few_attempts(
    store, campaigns, shipped_loyalty
):
    good = put(store, *_journey())
    poison = put(store, order_event("order.paid", "2026-03-01T15:01:00+00:00", order_id="666"))

    def processor(session, items, config, **kwargs):
        # Stands in for a bug or a row the database refuses; it affects this order only.
        if any(item.event.order.external_id == "666" for item in items):
            raise RuntimeError("order 666 cannot be stored")
        process_batch(session, items, config, **kwargs)

    now = at("2026-03-20T12:00:00+00:00")
    summary = process_inbox(
        store,
        campaigns,
        worker="w",
        shop_zone=UTC_ZONE,
        clock=lambda: now,
        processor=processor,
        loyalty=shipped_loyalty,
    )

    with store() as session:
        rows = {r.id: r for r in session.scalars(select(InboxEvent))}
    assert {rows[i].status for i in good} == {ClaimStatus.DONE}
    assert (rows[poison[0]].status, rows[poison[0]].attempts) == (ClaimStatus.FAILED, 3)
    assert rows[poison[0]].last_error == "RuntimeError: order 666 cannot be stored"
    assert (summary.failed, summary.retried, summary.planned) == (1, 2, 5)


def test_an_order_in_another_currency_earns_no_points_and_gets_no_points_email(store, drain):
    # The shop counts in USD (config/loyalty.yaml). A Canadian customer's CAD order: paid,
    # delivered, reviewed like any other, but it earns nothing, so "You earned 0 points"
    # must not be sent. The USD order of the same customer still gets its message.
    cad = order_event("order.paid", JOURNEY[1][1], order_id="1030", total="129.00")
    cad["order"]["currency"] = "CAD"
    put(store, cad, order_event("order.paid", JOURNEY[1][1], order_id="1031", total="129.00"))

    summary = drain()

    planned = {(o, c) for o, c in _planned_by_order(store)}
    assert ("1031", "points_earned") in planned
    assert ("1030", "points_earned") not in planned
    assert summary.skipped["points_earned: condition not met: order.points_earned > 0"] == 1
    assert summary.points == 229  # 129 base + 100 first-order bonus, for the USD order only


def _planned_by_order(store):
    with store() as session:
        return list(
            session.execute(
                select(Order.external_id, Touchpoint.campaign_id).join(
                    Order, Order.id == Touchpoint.order_id
                )
            )
        )


def test_an_assumed_delivery_is_not_told_as_a_confirmed_one(store, drain, campaigns):
    # Fulfilled 3 March, no carrier report: assumed delivered 13 March by the fallback.
    put(store, *_journey()[:3])
    drain()
    with transaction(store) as session:
        plan_assumed_deliveries(
            session, campaigns, now=at("2026-03-14T08:00:00+00:00"), shop_zone=UTC_ZONE
        )
    assumed = _checkin_context(store)
    assert assumed["order"]["delivery_confirmed"] is False
    assert assumed["order"]["delivered_at"] == at("2026-03-13T14:00:00+00:00")

    # The carrier's report comes in later: the planned check-in keeps its time, but now
    # says delivery happened, on the reported day.
    put(store, order_event("order.delivered", "2026-03-16T15:00:00+00:00"))
    drain()
    with store() as session:
        order = session.scalars(select(Order)).one()
        assert order.delivered_at == at("2026-03-13T14:00:00+00:00")
        assert order.delivery_confirmed_at == at("2026-03-16T15:00:00+00:00")
    confirmed = _checkin_context(store)
    assert confirmed["order"]["delivery_confirmed"] is True
    assert confirmed["order"]["delivered_at"] == at("2026-03-16T15:00:00+00:00")


def test_a_reported_delivery_is_confirmed(store, drain):
    put(store, *_journey())
    drain()
    with store() as session:
        order = session.scalars(select(Order)).one()
        assert order.delivery_confirmed_at == order.delivered_at == at(JOURNEY[3][1])
    assert _checkin_context(store)["order"]["delivery_confirmed"] is True


def _checkin_context(store):
    shop = ShopProfile(
        name="Northwind Goods",
        url="https://shop.example.com",
        support_email="help@shop.example.com",
        postal_address="12 Harbour Street, Portland, ME 04101, USA",
        public_base_url="https://hooks.shop.example.com/postpurchase",
        loyalty_page_url="https://shop.example.com/pages/rewards",
        review_link_template="{product_url}#write-a-review",
        default_locale="en",
        default_time_zone="UTC",
        signing_key=b"k" * 32,
    )
    with store() as session:
        tp = session.scalars(
            select(Touchpoint).where(Touchpoint.campaign_id == "delivery_checkin")
        ).one()
        return build_context(
            shop,
            touchpoint=tp,
            customer=session.get(Customer, tp.customer_id),
            order=session.get(Order, tp.order_id),
            loyalty=LoyaltyFigures(points_earned=0, points_balance=0, tier=None),
        )
