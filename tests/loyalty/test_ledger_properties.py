"""The ledger's invariants under random sequences of deliveries, refunds, cancellations,
adjustments and expiry runs, in any order and with duplicates."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from postpurchase.events import CanonicalEvent, EventType, Refund
from postpurchase.exceptions import InvalidInput
from postpurchase.loyalty.expiry import expire_points
from postpurchase.loyalty.ledger import adjust, apply_event, balance, points_for_order
from postpurchase.store.database import transaction
from postpurchase.store.models import LedgerKind, LoyaltyLedgerEntry, Order

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_runs = itertools.count()

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("400"), places=2)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("paid"), st.integers(0, 2)),
        st.tuples(st.just("refund"), st.integers(0, 2), st.integers(0, 3), money),
        st.tuples(st.just("cancel"), st.integers(0, 2)),
        st.tuples(st.just("adjust"), st.integers(-300, 300)),
        st.tuples(st.just("expire"), st.integers(0, 800)),
    ),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    subtotals=st.lists(money, min_size=3, max_size=3),
    rounding=st.sampled_from(["down", "nearest", "up"]),
    per_unit=st.sampled_from(["0.5", "1", "3"]),
    sequence=steps,
)
def test_balance_is_the_sum_and_never_negative(
    store, make_config, make_customer, make_order, subtotals, rounding, per_unit, sequence
):
    config = make_config(
        earning={"rounding": rounding, "points_per_unit": per_unit},
        bonuses=[{"name": "welcome", "first_order": True, "points": 25}],
        expiry={"mode": "after_earned", "months": 12},
    )
    run = next(_runs)
    with transaction(store) as session:
        customer = make_customer(session)
        orders = [
            make_order(session, customer, subtotal=str(s), paid_at=START + timedelta(days=i))
            for i, s in enumerate(subtotals)
        ]
    order_ids = [o.id for o in orders]
    seen: list[tuple[int, int, str]] = []

    for step in sequence:
        with transaction(store) as session:
            kind = step[0]
            if kind == "adjust":
                try:
                    adjust(session, customer_id=customer.id, points=step[1], reason="test")
                except InvalidInput:
                    pass  # zero points or more than the balance: refused, nothing written
            elif kind == "expire":
                expire_points(session, config=config, now=START + timedelta(days=step[1]))
            else:
                order = session.get(Order, order_ids[step[1]])
                if kind == "paid":
                    event = CanonicalEvent(type=EventType.ORDER_PAID, occurred_at=START)
                elif kind == "cancel":
                    order.cancelled_at = order.cancelled_at or START + timedelta(days=2)
                    event = CanonicalEvent(type=EventType.ORDER_CANCELLED, occurred_at=START)
                else:
                    amount = step[3]
                    order.refunded_amount = min(order.refunded_amount + amount, order.total * 2)
                    refund = Refund(external_id=f"r{run}-{step[2]}", amount=amount, currency="USD")
                    event = CanonicalEvent(
                        type=EventType.ORDER_REFUNDED, occurred_at=START, refund=refund
                    )
                apply_event(session, event=event, order=order, customer=customer, config=config)

        with store() as session:
            rows = session.execute(
                select(LoyaltyLedgerEntry.id, LoyaltyLedgerEntry.points, LoyaltyLedgerEntry.cause)
                .where(LoyaltyLedgerEntry.customer_id == customer.id)
                .order_by(LoyaltyLedgerEntry.id)
            ).all()
            # Append-only: every row seen before is still there, unchanged.
            assert [tuple(r) for r in rows[: len(seen)]] == seen
            seen = [tuple(r) for r in rows]
            assert balance(session, customer.id) == sum(r.points for r in rows)
            assert balance(session, customer.id) >= 0
            for order_id in order_ids:
                assert points_for_order(session, order_id) >= 0
                awards = session.scalar(
                    select(func.count()).where(
                        LoyaltyLedgerEntry.order_id == order_id,
                        LoyaltyLedgerEntry.kind == LedgerKind.AWARD,
                    )
                )
                assert awards <= 1
            for order_id in order_ids:
                order = session.get(Order, order_id)
                debits = session.scalar(
                    select(func.count()).where(
                        LoyaltyLedgerEntry.customer_id == customer.id,
                        LoyaltyLedgerEntry.kind.in_([LedgerKind.EXPIRY, LedgerKind.ADJUSTMENT]),
                        LoyaltyLedgerEntry.points < 0,
                    )
                )
                if order.cancelled_at is not None and not debits:
                    # Unless points expired or were spent, a cancelled order keeps none.
                    assert points_for_order(session, order_id) == 0
