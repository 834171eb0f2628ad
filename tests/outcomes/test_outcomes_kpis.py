"""Shop KPIs from stored orders, answers, reviews and the points ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from outcome_data import T0, customers, order, touchpoint
from sqlalchemy import update

from postpurchase.outcomes.kpis import shop_kpis
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    CustomerTier,
    LedgerKind,
    LoyaltyLedgerEntry,
    Order,
    SurveyResponse,
)


def test_kpis_from_what_is_stored(store):
    with transaction(store) as session:
        a, b, c, d = customers(session, 4)
        first = order(session, a, T0)
        order(session, a, T0 + timedelta(days=20))
        order(session, b, T0 + timedelta(days=1))
        order(session, c, T0 + timedelta(days=2))
        order(session, c, T0 + timedelta(days=72))
        cancelled = order(session, b, T0 + timedelta(days=5), "10.00")
        session.execute(update(Order).where(Order.id == cancelled).values(cancelled_at=T0))
        order(session, d, None, placed_at=T0)  # never paid: not a customer who bought
        asked = [
            touchpoint(session, x, order_id=o, sent_at=T0 + timedelta(days=8))
            for x, o in ((a, first), (b, cancelled))
        ]
        session.execute(
            update(Order).where(Order.id == first).values(reviewed_at=T0 + timedelta(days=9))
        )
        for tp, score in zip(
            [*asked, touchpoint(session, c, campaign="delivery_checkin")], (5, 4, 2), strict=True
        ):
            session.add(
                SurveyResponse(touchpoint_id=tp, customer_id=a, score=score, responded_at=T0)
            )
        session.add_all(
            [
                LoyaltyLedgerEntry(customer_id=a, kind=LedgerKind.AWARD, points=100, cause="a1"),
                LoyaltyLedgerEntry(customer_id=a, kind=LedgerKind.EXPIRY, points=-20, cause="e1"),
                CustomerTier(customer_id=a, tier="VIP", since=T0),
                CustomerTier(customer_id=b, tier="Member", since=T0),
                CustomerTier(customer_id=c, tier="Member", since=T0),
            ]
        )

    with store() as session:
        kpis = shop_kpis(session, now=T0 + timedelta(days=100), point_value=Decimal("0.01"))

    assert kpis.customers == 3
    assert kpis.repeat_purchase_rate == round(2 / 3, 4)
    assert kpis.median_days_to_second_order == 45.0  # 20 and 70 days
    assert kpis.cohorts == [
        {
            "cohort": "2026-11",
            "customers": 3,
            "repeat_30d": round(1 / 3, 4),
            "repeat_60d": round(1 / 3, 4),
            "repeat_90d": round(2 / 3, 4),
        }
    ]
    assert kpis.csat == round(2 / 3, 4)
    assert kpis.nps is None
    assert kpis.review_rate == 0.5
    assert (kpis.points_outstanding, kpis.points_value) == (80, "0.80")
    assert kpis.tiers == {"Member": 2, "VIP": 1}


def test_a_young_cohort_has_no_rate_yet(store):
    with transaction(store) as session:
        (a,) = customers(session, 1)
        order(session, a, T0)
    with store() as session:
        kpis = shop_kpis(session, now=T0 + timedelta(days=40))
    assert kpis.cohorts[0]["repeat_30d"] == 0.0
    assert kpis.cohorts[0]["repeat_60d"] is None
    assert (kpis.csat, kpis.review_rate, kpis.median_days_to_second_order) == (None, None, None)
