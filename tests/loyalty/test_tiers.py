from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from postpurchase.events import CanonicalEvent, EventType, TierChange
from postpurchase.loyalty.tiers import refresh_segments
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    ClaimStatus,
    CustomerTier,
    CustomerTierChange,
    InboxEvent,
)

NOW = datetime(2026, 6, 1, 3, 0, 0, 123456, tzinfo=UTC)  # microseconds: payload format


def _tiers(session):
    return dict(session.execute(select(CustomerTier.customer_id, CustomerTier.tier)).all())


def _history(session):
    return session.execute(
        select(
            CustomerTierChange.customer_id, CustomerTierChange.from_tier, CustomerTierChange.to_tier
        ).order_by(CustomerTierChange.id)
    ).all()


def test_refresh_assigns_tiers_and_emits_one_event_per_change(
    store, make_config, make_customer, make_order
):
    config = make_config()
    day = timedelta(days=1)
    with transaction(store) as session:
        silver = make_customer(session, first_name="Silvia")
        make_order(session, silver, subtotal="300.00", paid_at=NOW - 40 * day)
        vip = make_customer(session, first_name="Vera", time_zone="Europe/Paris")
        for n, amount in enumerate(["500.00", "400.00", "300.00"]):
            make_order(session, vip, subtotal=amount, paid_at=NOW - (n + 1) * 10 * day)
        bronze = make_customer(session)
        make_order(session, bronze, subtotal="50.00", paid_at=NOW - 5 * day)
        # None of these count towards a tier: too old, another currency, cancelled, refunded.
        old = make_customer(session)
        make_order(session, old, subtotal="5000.00", paid_at=NOW - 400 * day)
        euro = make_customer(session)
        make_order(session, euro, subtotal="5000.00", paid_at=NOW - day, currency="EUR")
        cancelled = make_customer(session)
        make_order(session, cancelled, subtotal="5000.00", paid_at=NOW - day, cancelled_at=NOW)
        refunded = make_customer(session)
        make_order(
            session,
            refunded,
            subtotal="1200.00",
            paid_at=NOW - day,
            refunded_amount=Decimal("1000.00"),
        )
        unpaid = make_customer(session)
        make_order(session, unpaid, subtotal="900.00", paid_at=None)

    with transaction(store) as session:
        summary = refresh_segments(session, config=config, now=NOW)

    with store() as session:
        assert _tiers(session) == {
            silver.id: "Silver",
            vip.id: "VIP",
            bronze.id: "Bronze",
            refunded.id: "Bronze",
        }
        assert sorted(_history(session)) == [
            (silver.id, "Bronze", "Silver"),
            (vip.id, "Bronze", "VIP"),
        ]
        vip_row = session.get(CustomerTier, vip.id)
        assert vip_row.trailing_orders == 3 and vip_row.trailing_spend == Decimal("1200")
        events = session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
        assert len(events) == 2
        for row in events:
            assert row.source == "shopify" and row.status is ClaimStatus.PENDING
            assert row.event_type == "tier.changed" and row.topic == "tier.changed"
            parsed = CanonicalEvent.model_validate(row.payload)
            assert parsed.as_payload() == row.payload  # the exact canonical shape
            assert parsed.type is EventType.TIER_CHANGED and parsed.occurred_at == NOW
        vip_event = next(e for e in events if e.subject_id == vip.external_id)
        parsed = CanonicalEvent.model_validate(vip_event.payload)
        assert parsed.tier == TierChange(from_tier="Bronze", to_tier="VIP")
        assert parsed.customer is not None and parsed.customer.email == vip.email
        assert parsed.customer.time_zone == "Europe/Paris"
        assert parsed.customer.sms_consent is None  # consent is never overwritten by a snapshot
    assert summary.sizes == {"Bronze": 2, "Silver": 1, "VIP": 1}
    assert summary.moves == {("Bronze", "Silver"): 1, ("Bronze", "VIP"): 1}
    assert "tiers: Bronze 2, Silver 1, VIP 1" in str(summary)

    with transaction(store) as session:
        again = refresh_segments(session, config=config, now=NOW + timedelta(hours=1))
    assert again.moves == {} and again.events == 0
    with store() as session:
        assert len(_history(session)) == 2
        assert len(session.scalars(select(InboxEvent)).all()) == 2


def test_no_flapping_at_a_threshold(store, make_config, make_customer, make_order):
    """Hovering around Silver's 250 keeps Silver; only 30 days continuously below move down."""
    config = make_config()
    with transaction(store) as session:
        customer = make_customer(session)
        order = make_order(session, customer, subtotal="250.00", paid_at=NOW - timedelta(days=3))

    def refresh(at, refunded):
        with transaction(store) as session:
            session.get(type(order), order.id).refunded_amount = Decimal(refunded)
        with transaction(store) as session:
            refresh_segments(session, config=config, now=at)
        with store() as session:
            row = session.get(CustomerTier, customer.id)
            return row.tier, row.downgrade_pending_since

    day = timedelta(days=1)
    assert refresh(NOW, "0") == ("Silver", None)
    assert refresh(NOW + day, "0.01") == ("Silver", NOW + day)  # grace starts
    assert refresh(NOW + 2 * day, "0") == ("Silver", None)  # back at the threshold: cleared
    assert refresh(NOW + 3 * day, "0.01") == ("Silver", NOW + 3 * day)
    assert refresh(NOW + 32 * day, "0.01") == ("Silver", NOW + 3 * day)  # 29 days below
    assert refresh(NOW + 33 * day, "0.01") == ("Bronze", None)  # 30 days: down
    assert refresh(NOW + 34 * day, "0") == ("Silver", None)  # upgrades are immediate

    with store() as session:
        assert [h[1:] for h in _history(session)] == [
            ("Bronze", "Silver"),
            ("Silver", "Bronze"),
            ("Bronze", "Silver"),
        ]
        assert len(session.scalars(select(InboxEvent)).all()) == 3


def test_rfm_quintiles_and_an_rfm_criterion(store, make_config, make_customer, make_order):
    config = make_config(
        tiers={
            "levels": [
                {"name": "Bronze"},
                {"name": "Champion", "min_rfm": 12, "multiplier": "2"},
            ]
        }
    )
    customers = []
    with transaction(store) as session:
        # Customer i bought i times (i * 100 in all), last 20 - i days ago: recency,
        # frequency and spend rise together, so all three quintiles agree.
        for i in range(1, 11):
            customer = make_customer(session)
            customers.append(customer)
            for k in range(i):
                make_order(
                    session,
                    customer,
                    subtotal="100.00",
                    paid_at=NOW - timedelta(days=20 - i, hours=k),
                )
    with transaction(store) as session:
        refresh_segments(session, config=config, now=NOW)
    with store() as session:
        rows = {row.customer_id: row for row in session.scalars(select(CustomerTier))}
    scores = [
        (rows[c.id].recency_score, rows[c.id].frequency_score, rows[c.id].monetary_score)
        for c in customers
    ]
    assert scores == [(q, q, q) for q in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)]
    assert [rows[c.id].tier for c in customers] == ["Bronze"] * 6 + ["Champion"] * 4
