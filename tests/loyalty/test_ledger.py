import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from postpurchase.events import EventType, Refund
from postpurchase.exceptions import ConcurrentChange, InvalidInput
from postpurchase.loyalty.ledger import adjust, apply_event, balance, points_for_order
from postpurchase.store.database import transaction
from postpurchase.store.models import CustomerTier, LedgerKind, LoyaltyLedgerEntry, Order

PAID_AT = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)  # the factories' default paid_at


@pytest.fixture
def apply(make_event):
    """``apply(session, kind, order, config, refund=...)``: an event of ``order`` (placed by
    its customer) through the ledger."""

    def run(session, kind, order, config, **event):
        return apply_event(
            session,
            event=make_event(kind, **event),
            order=order,
            customer=order.customer,
            config=config,
        )

    return run


def _rows(session, customer_id):
    return session.scalars(
        select(LoyaltyLedgerEntry)
        .where(LoyaltyLedgerEntry.customer_id == customer_id)
        .order_by(LoyaltyLedgerEntry.id)
    ).all()


def _refund(rid, amount):
    return Refund(external_id=rid, amount=Decimal(amount), currency="USD")


def test_award_once_under_duplicate_deliveries(
    store, make_config, make_customer, make_order, apply
):
    config = make_config()
    with transaction(store) as session:
        customer = make_customer(session)
        order = make_order(session, customer, subtotal="120.50", total="131.20")
        first = apply(session, EventType.ORDER_PAID, order, config)
    assert first is not None and first.points == 120 and first.balance == 120
    for kind in (EventType.ORDER_PAID, EventType.ORDER_PAID, EventType.ORDER_FULFILLED):
        with transaction(store) as session:
            again = apply(session, kind, order, config)
            assert again is None
    with store() as session:
        rows = _rows(session, customer.id)
        assert [(r.kind, r.points, r.cause) for r in rows] == [
            (LedgerKind.AWARD, 120, f"award:order:{order.id}")
        ]
        assert balance(session, customer.id) == 120


def test_points_exclude_tax_and_shipping_and_optionally_discounts(
    store, make_config, make_customer, make_order, apply
):
    with transaction(store) as session:
        customer = make_customer(session)
        order = make_order(
            session,
            customer,
            subtotal="200.00",
            total="229.00",
            total_tax="19.00",
            total_shipping="10.00",
            total_discounts="20.00",
        )
        config = make_config(earning={"subtract_discounts": True, "points_per_unit": "2"})
        change = apply(session, EventType.ORDER_PAID, order, config)
    assert change is not None and change.points == 360  # (200 - 20) * 2


def test_cancelled_before_paid_earns_nothing(store, make_config, make_customer, make_order, apply):
    config = make_config()
    with transaction(store) as session:
        customer = make_customer(session)
        order = make_order(session, customer, paid_at=None)
        order.cancelled_at = PAID_AT
        for kind in (EventType.ORDER_CANCELLED, EventType.ORDER_PAID):
            assert apply(session, kind, order, config) is None
        assert _rows(session, customer.id) == []


def test_cancelled_after_paid_reverses_the_remainder(
    store, make_config, make_customer, make_order, apply
):
    config = make_config()
    with transaction(store) as session:
        customer = make_customer(session)
        order = make_order(session, customer, subtotal="100.00")
        apply(session, EventType.ORDER_PAID, order, config)
        order.refunded_amount = Decimal("30.00")
        apply(session, EventType.ORDER_REFUNDED, order, config, refund=_refund("r1", "30.00"))
        order.cancelled_at = PAID_AT + timedelta(days=1)
        change = apply(session, EventType.ORDER_CANCELLED, order, config)
        assert change is not None and change.points == -70 and change.balance == 0
        assert points_for_order(session, order.id) == 0


def test_partial_then_full_refund_reverses_proportionally(
    store, make_config, make_customer, make_order, apply
):
    config = make_config(earning={"rounding": "nearest"})
    with transaction(store) as session:
        customer = make_customer(session)
        order = make_order(session, customer, subtotal="90.00", total="100.00")
        apply(session, EventType.ORDER_PAID, order, config)
        order.refunded_amount = Decimal("25.00")
        partial = apply(
            session, EventType.ORDER_REFUNDED, order, config, refund=_refund("r1", "25.00")
        )
        # A redelivery of the same refund changes nothing.
        duplicate = apply(
            session, EventType.ORDER_REFUNDED, order, config, refund=_refund("r1", "25.00")
        )
        order.refunded_amount = Decimal("100.00")
        rest = apply(
            session, EventType.ORDER_REFUNDED, order, config, refund=_refund("r2", "75.00")
        )
        assert partial is not None and partial.points == -23  # 25% of 90, 22.5 rounded half up
        assert duplicate is None
        assert rest is not None and rest.points == -67 and rest.balance == 0
        causes = [r.cause for r in _rows(session, customer.id)]
        assert causes == [
            f"award:order:{order.id}",
            f"reversal:refund:{order.id}:r1",
            f"reversal:refund:{order.id}:r2",
        ]


def test_refund_larger_than_award_never_leaves_order_negative(
    store, make_config, make_customer, make_order, apply
):
    config = make_config()
    with transaction(store) as session:
        customer = make_customer(session)
        other = make_order(session, customer, subtotal="500.00")
        order = make_order(session, customer, subtotal="40.00")
        for paid in (other, order):
            apply(session, EventType.ORDER_PAID, paid, config)
        # Refunds on the platform can exceed the order (goodwill, shipping); they reverse no
        # more than the order earned, and never eat into points from the other order.
        order.refunded_amount = Decimal("30.00")
        apply(session, EventType.ORDER_REFUNDED, order, config, refund=_refund("r1", "30.00"))
        order.refunded_amount = Decimal("90.00")
        apply(session, EventType.ORDER_REFUNDED, order, config, refund=_refund("r2", "60.00"))
        late = apply(
            session, EventType.ORDER_REFUNDED, order, config, refund=_refund("r3", "60.00")
        )
        assert late is None
        assert points_for_order(session, order.id) == 0
        assert balance(session, customer.id) == 500


def test_refund_without_detail_on_a_refunded_order_reverses_the_rest(
    store, make_config, make_customer, make_order, apply
):
    config = make_config()
    with transaction(store) as session:
        customer = make_customer(session)
        order = make_order(session, customer, subtotal="80.00")
        apply(session, EventType.ORDER_PAID, order, config)
        order.financial_status = "refunded"
        change = apply(session, EventType.ORDER_REFUNDED, order, config)
        assert change is not None and change.points == -80


def test_tier_multiplier_and_bonuses(store, make_config, make_customer, make_order, apply):
    config = make_config(
        bonuses=[
            {"name": "welcome", "first_order": True, "points": 50},
            {"name": "gear", "product_type": "accessories", "points_per_unit": "1"},
        ]
    )
    with transaction(store) as session:
        customer = make_customer(session)
        session.add(CustomerTier(customer_id=customer.id, tier="Silver", since=PAID_AT))
        first = make_order(
            session,
            customer,
            subtotal="101.00",
            lines=[("Accessories", 2, "20.50"), ("Shoes", 1, "60.00")],
        )
        second = make_order(session, customer, subtotal="10.00", paid_at=PAID_AT + timedelta(1))
        one = apply(session, EventType.ORDER_PAID, first, config)
        two = apply(session, EventType.ORDER_PAID, second, config)
    # Silver x1.5 on the base only: floor(101 * 1.5) = 151, + 50 welcome + 41 on accessories.
    assert one is not None and one.points == 151 + 50 + 41
    assert two is not None and two.points == 15  # not a first order any more


def test_order_in_another_currency_earns_nothing(
    store, make_config, make_customer, make_order, apply
):
    with transaction(store) as session:
        customer = make_customer(session)
        order = make_order(session, customer)
        order.currency = "EUR"
        assert apply(session, EventType.ORDER_PAID, order, make_config()) is None


def test_adjustments_refuse_a_negative_balance_and_honour_keys(store, make_customer):
    with transaction(store) as session:
        customer = make_customer(session)
        added = adjust(session, customer_id=customer.id, points=40, reason="goodwill", key="t-1")
        assert added.balance == 40
        with pytest.raises(InvalidInput, match="already applied"):
            adjust(session, customer_id=customer.id, points=40, reason="goodwill", key="t-1")
        with pytest.raises(InvalidInput, match="negative balance"):
            adjust(session, customer_id=customer.id, points=-41, reason="redeemed")
        taken = adjust(session, customer_id=customer.id, points=-40, reason="redeemed")
        assert taken.balance == 0


def _waiting_on_a_lock(store) -> bool:
    with store() as session:
        return bool(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        )


def test_a_cause_written_meanwhile_outside_the_customers_lock_fails_the_batch(
    store, db_url, make_config, make_customer, make_order, make_event
):
    """An order whose events name two customers: a writer holding the other customer's lock
    inserts the award first. The batch must not go on from what it read: it fails, to be
    retried (and then finds the award)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: no transaction can write meanwhile")
    config = make_config()
    with transaction(store) as session:
        customer = make_customer(session)
        other = make_customer(session)
        order = make_order(session, customer)
    outcome: list[object] = []

    def award() -> None:
        try:
            with transaction(store) as session:
                outcome.append(
                    apply_event(
                        session,
                        event=make_event(EventType.ORDER_PAID),
                        order=session.get(Order, order.id),
                        customer=customer,
                        config=config,
                    )
                )
        except ConcurrentChange as exc:
            outcome.append(exc)

    with transaction(store) as first:
        first.add(
            LoyaltyLedgerEntry(
                customer_id=other.id,
                order_id=order.id,
                kind=LedgerKind.AWARD,
                points=100,
                cause=f"award:order:{order.id}",
            )
        )
        first.flush()
        racer = threading.Thread(target=award)
        racer.start()
        # Commit only once the racer waits on the uncommitted row's cause (asked in a new
        # transaction each time: pg_stat_activity holds still within one).
        while not _waiting_on_a_lock(store):
            assert racer.is_alive(), outcome
            time.sleep(0.01)
    racer.join()
    assert len(outcome) == 1 and isinstance(outcome[0], ConcurrentChange)
    with store() as session:
        assert balance(session, customer.id) == 0 and balance(session, other.id) == 100
