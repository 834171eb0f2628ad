from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from postpurchase.events import EventType
from postpurchase.loyalty.expiry import expire_points
from postpurchase.loyalty.ledger import adjust, apply_event, balance
from postpurchase.store.database import transaction
from postpurchase.store.models import LedgerKind, LoyaltyLedgerEntry

PAID_AT = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)  # the factories' default paid_at
EXPIRES_AT = datetime(2027, 3, 10, 14, 30, tzinfo=UTC)  # 12 months later


def _paid(session, config, customer, order, make_event):
    return apply_event(
        session,
        event=make_event(EventType.ORDER_PAID),
        order=order,
        customer=customer,
        config=config,
    )


def test_points_expire_exactly_at_the_boundary(
    store, make_config, make_customer, make_order, make_event
):
    config = make_config(expiry={"mode": "after_earned", "months": 12})
    with transaction(store) as session:
        customer = make_customer(session)
        award = _paid(session, config, customer, make_order(session, customer), make_event)
        assert award is not None
        row = session.scalar(
            select(LoyaltyLedgerEntry).where(LoyaltyLedgerEntry.cause == award.cause)
        )
        assert row.expires_at == EXPIRES_AT

    with transaction(store) as session:
        early = expire_points(session, config=config, now=EXPIRES_AT - timedelta(seconds=1))
        assert (early.customers, early.points) == (0, 0)
    with transaction(store) as session:
        due = expire_points(session, config=config, now=EXPIRES_AT)
        assert (due.customers, due.points) == (1, 100)
    with transaction(store) as session:
        again = expire_points(session, config=config, now=EXPIRES_AT + timedelta(hours=1))
        assert (again.customers, again.points) == (0, 0)
        assert balance(session, customer.id) == 0


def test_only_unspent_points_expire_and_newer_ones_stay(
    store, make_config, make_customer, make_order, make_event
):
    config = make_config(expiry={"mode": "after_earned", "months": 12})
    with transaction(store) as session:
        customer = make_customer(session)
        _paid(session, config, customer, make_order(session, customer, subtotal="100"), make_event)
        later = make_order(session, customer, subtotal="50", paid_at=PAID_AT + timedelta(days=60))
        _paid(session, config, customer, later, make_event)
        adjust(session, customer_id=customer.id, points=-30, reason="redeemed a voucher")
        assert balance(session, customer.id) == 120

    with transaction(store) as session:
        first = expire_points(session, config=config, now=EXPIRES_AT)
        # 100 earned first, 30 of them spent: 70 expire; the 50 from the later order stay.
        assert first.points == 70
        assert balance(session, customer.id) == 50
    with transaction(store) as session:
        second = expire_points(session, config=config, now=EXPIRES_AT + timedelta(days=61))
        assert second.points == 50
        kinds = session.scalars(
            select(LoyaltyLedgerEntry.kind).where(LoyaltyLedgerEntry.customer_id == customer.id)
        ).all()
        assert kinds.count(LedgerKind.EXPIRY) == 2
        assert balance(session, customer.id) == 0


def test_inactivity_expires_the_whole_balance_once(
    store, make_config, make_customer, make_order, make_event
):
    config = make_config(expiry={"mode": "after_inactivity", "months": 6})
    with transaction(store) as session:
        idle = make_customer(session)
        _paid(session, config, idle, make_order(session, idle, subtotal="80"), make_event)
        adjust(session, customer_id=idle.id, points=20, reason="survey reward")
        active = make_customer(session)
        recent = PAID_AT + timedelta(days=120)
        _paid(session, config, active, make_order(session, active, paid_at=recent), make_event)

    six_months = datetime(2026, 9, 10, 14, 30, tzinfo=UTC)
    with transaction(store) as session:
        assert (
            expire_points(session, config=config, now=six_months - timedelta(minutes=1)).points == 0
        )
    with transaction(store) as session:
        result = expire_points(session, config=config, now=six_months)
        assert (result.customers, result.points) == (1, 100)
    with transaction(store) as session:
        assert expire_points(session, config=config, now=six_months + timedelta(days=1)).points == 0
        assert balance(session, idle.id) == 0
        assert balance(session, active.id) == 100
