"""The ledger's invariants under random sequences of deliveries, refunds, cancellations,
adjustments and expiry runs, in any order and with duplicates."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from postpurchase.events import CanonicalEvent, EventType, Refund
from postpurchase.exceptions import InvalidInput
from postpurchase.loyalty.expiry import expire_points
from postpurchase.loyalty.ledger import adjust, apply_event, apply_events, balance, points_for_order
from postpurchase.loyalty.ledger_rows import LedgerEvent
from postpurchase.store.database import transaction
from postpurchase.store.models import Customer, LedgerKind, LoyaltyLedgerEntry, Order
from postpurchase.stored_events import event_of

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


batch_steps = st.lists(
    st.one_of(
        st.tuples(st.just("paid"), st.integers(0, 2)),
        st.tuples(st.just("placed"), st.integers(0, 2)),
        st.tuples(st.just("refund"), st.integers(0, 2), st.integers(0, 3), money),
        st.tuples(st.just("refunded"), st.integers(0, 2)),
        st.tuples(st.just("cancel"), st.integers(0, 2)),
    ),
    max_size=12,
)


def _twin_event(step: tuple, order: Order, refunds: set[tuple[int, int]]) -> CanonicalEvent:
    """The event of ``step``, after applying it to ``order`` as the processor's upsert would."""
    kind = step[0]
    if kind == "cancel":
        order.cancelled_at = order.cancelled_at or START + timedelta(days=2)
        return CanonicalEvent(type=EventType.ORDER_CANCELLED, occurred_at=START)
    if kind == "refund":
        if (step[1], step[2]) not in refunds:  # a refund counts once per refund id
            refunds.add((step[1], step[2]))
            order.refunded_amount += step[3]
        refund = Refund(external_id=f"r{step[2]}", amount=step[3], currency="USD")
        return CanonicalEvent(type=EventType.ORDER_REFUNDED, occurred_at=START, refund=refund)
    if kind == "refunded":
        order.financial_status = "refunded"
        return CanonicalEvent(type=EventType.ORDER_REFUNDED, occurred_at=START)
    if kind == "placed":
        return CanonicalEvent(type=EventType.ORDER_PLACED, occurred_at=START)
    return CanonicalEvent(type=EventType.ORDER_PAID, occurred_at=START)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    subtotals=st.lists(money, min_size=3, max_size=3),
    rounding=st.sampled_from(["down", "nearest", "up"]),
    earlier=batch_steps,
    batch=batch_steps,
    unpaid=st.integers(0, 3),
)
# A later order awarded first in the batch: the earlier one is then no first order either.
@example(
    subtotals=[Decimal("10"), Decimal("20"), Decimal("30")],
    rounding="down",
    earlier=[],
    batch=[("paid", 0), ("paid", 2)],
    unpaid=3,
)
def test_a_batch_writes_what_its_events_write_one_at_a_time(
    store, make_config, make_customer, make_order, subtotals, rounding, earlier, batch, unpaid
):
    """Twin customers with the same orders get the same events: one twin's second lot as one
    batch, everything else one event at a time. Their ledgers must be the same."""
    config = make_config(
        earning={"rounding": rounding},
        bonuses=[{"name": "welcome", "first_order": True, "points": 25}],
        expiry={"mode": "after_earned", "months": 12},
    )
    twins = []
    with transaction(store) as session:
        for _ in range(2):
            customer = make_customer(session)
            orders = [
                make_order(
                    session,
                    customer,
                    subtotal=str(s),
                    paid_at=None if i == unpaid else START + timedelta(days=2 - i),
                )
                for i, s in enumerate(subtotals)
            ]
            twins.append((customer.id, [o.id for o in orders], set()))

    for lot, steps in (("earlier", earlier), ("batch", batch)):
        with transaction(store) as session:
            changes = []
            for twin, (customer_id, order_ids, refunds) in enumerate(twins):
                customer = session.get(Customer, customer_id)
                orders = [session.get(Order, order_id) for order_id in order_ids]
                # The processor applies a batch's events to its orders before loyalty sees them.
                events = [(orders[s[1]], _twin_event(s, orders[s[1]], refunds)) for s in steps]
                if twin == 0 and lot == "batch":
                    batch_rows = apply_events(
                        session,
                        [
                            LedgerEvent(event_of(event), order, customer_id)
                            for order, event in events
                        ],
                        config=config,
                    )
                    # None for an event that wrote nothing; these events write one row at most
                    written = [rows[-1] if rows else None for rows in batch_rows]
                else:
                    written = [
                        apply_event(
                            session, event=event, order=order, customer=customer, config=config
                        )
                        for order, event in events
                    ]
                changes.append(
                    [(c.kind, c.points, c.balance) if c is not None else None for c in written]
                )
            assert changes[0] == changes[1]

    with store() as session:
        ledgers = []
        for customer_id, order_ids, _ in twins:
            rows = session.scalars(
                select(LoyaltyLedgerEntry)
                .where(LoyaltyLedgerEntry.customer_id == customer_id)
                .order_by(LoyaltyLedgerEntry.id)
            ).all()
            ledgers.append(
                [
                    (order_ids.index(r.order_id), r.kind, r.points, r.cause.split(":")[:2], r.note)
                    for r in rows
                ]
            )
        assert ledgers[0] == ledgers[1]
