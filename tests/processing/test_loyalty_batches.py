"""Loyalty applied to whole batches: events of one order or customer in the same batch give
the ledger they would give one after the other, and the ledger's invariants hold."""

import pytest
from event_journeys import order_event, put
from sqlalchemy import func, select

from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.models import Customer, LoyaltyLedgerEntry, Order

PAID = "2026-03-02T10:00:00+00:00"
LATER = "2026-03-03T10:00:00+00:00"


@pytest.fixture
def loyalty():
    # The shipped file: 1 point per USD, a 100-point first-order bonus, expiry after 12 months.
    return load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")


@pytest.fixture
def drain(drain, loyalty):
    return lambda: drain(loyalty=loyalty)


def _refund(refund_id: str, amount: str) -> dict:
    return {"external_id": refund_id, "amount": amount, "currency": "USD"}


def ledger(store, customer_id: str = "c-77") -> list[tuple[str, str, int, str]]:
    """(order, kind, points, cause without the order's id) of the customer's rows, in order."""
    with store() as session:
        rows = session.execute(
            select(Order.external_id, LoyaltyLedgerEntry.kind, LoyaltyLedgerEntry.points)
            .add_columns(LoyaltyLedgerEntry.cause)
            .join(Order, Order.id == LoyaltyLedgerEntry.order_id)
            .join(Customer, Customer.id == LoyaltyLedgerEntry.customer_id)
            .where(Customer.external_id == customer_id)
            .order_by(LoyaltyLedgerEntry.id)
        ).all()
    return [(order, kind.value, points, cause.split(":")[0]) for order, kind, points, cause in rows]


def balance_holds(store) -> None:
    """Every balance is the sum of its rows and not negative, and no order is below zero."""
    with store() as session:
        per_customer = session.execute(
            select(func.sum(LoyaltyLedgerEntry.points)).group_by(LoyaltyLedgerEntry.customer_id)
        ).scalars()
        assert all(total >= 0 for total in per_customer)
        per_order = session.execute(
            select(func.sum(LoyaltyLedgerEntry.points)).group_by(LoyaltyLedgerEntry.order_id)
        ).scalars()
        assert all(total >= 0 for total in per_order)


def test_duplicate_deliveries_in_one_batch_award_once(store, drain):
    paid = order_event("order.paid", PAID, total="249.00")
    put(store, order_event("order.placed", PAID), paid, paid, order_event("order.fulfilled", LATER))
    summary = drain()
    assert summary.points == 349  # 249 + the first-order bonus
    assert ledger(store) == [("5001", "award", 349, "award")]
    drain()  # and a second run changes nothing
    assert ledger(store) == [("5001", "award", 349, "award")]


def test_paid_then_refunded_in_one_batch_reverses_proportionally(store, drain):
    put(
        store,
        order_event("order.paid", PAID, total="200.00"),
        order_event("order.refunded", LATER, total="200.00", refund=_refund("r1", "50.00")),
        order_event("order.refunded", LATER, total="200.00", refund=_refund("r1", "50.00")),
    )
    summary = drain()
    # 300 awarded (200 + 100 bonus); a quarter of the order refunded takes a quarter back, once.
    assert ledger(store) == [("5001", "award", 300, "award"), ("5001", "reversal", -75, "reversal")]
    assert summary.points == 225
    put(store, order_event("order.refunded", LATER, total="200.00", refund=_refund("r2", "150.00")))
    drain()
    assert ledger(store)[-1] == ("5001", "reversal", -225, "reversal")  # fully refunded: the rest
    balance_holds(store)


def test_paid_and_fully_refunded_in_one_batch_ends_at_zero(store, drain):
    put(
        store,
        order_event("order.paid", PAID, total="80.00"),
        order_event("order.refunded", LATER, total="80.00", refund=_refund("r1", "30.00")),
        order_event("order.refunded", LATER, total="80.00", refund=_refund("r2", "50.00")),
    )
    assert drain().points == 0
    # Each refund takes its own share, as it would one batch after the other: 30 of 80 is 67
    # points (rounded down); the refund that completes the order takes the rest.
    assert ledger(store) == [
        ("5001", "award", 180, "award"),
        ("5001", "reversal", -67, "reversal"),
        ("5001", "reversal", -113, "reversal"),
    ]
    balance_holds(store)


def test_paid_then_cancelled_in_one_batch_earns_nothing(store, drain):
    put(
        store,
        order_event("order.paid", PAID),
        order_event("order.cancelled", LATER),
        order_event("order.paid", PAID, order_id="5002"),
    )
    drain()
    # The cancelled order never earned, so the other one is the customer's first.
    assert ledger(store) == [("5002", "award", 349, "award")]
    put(store, order_event("order.cancelled", LATER, order_id="5002"))
    drain()
    assert ledger(store)[-1] == ("5002", "reversal", -349, "reversal")
    balance_holds(store)


def test_two_first_orders_of_one_customer_in_one_batch_get_one_bonus(store, drain):
    put(
        store,
        order_event("order.paid", PAID, order_id="5001", total="20.00"),
        order_event("order.paid", LATER, order_id="5002", total="30.00"),
        order_event("order.paid", PAID, order_id="6001", customer_id="c-88", total="40.00"),
    )
    assert drain().points == 120 + 30 + 140
    assert ledger(store) == [("5001", "award", 120, "award"), ("5002", "award", 30, "award")]
    assert ledger(store, "c-88") == [("6001", "award", 140, "award")]


def test_a_later_order_first_in_the_batch_gives_the_bonus_at_most_once(store, drain):
    put(
        store,
        order_event("order.paid", LATER, order_id="5002", total="30.00"),
        order_event("order.paid", PAID, order_id="5001", total="20.00"),
    )
    drain()
    with store() as session:
        notes = session.scalars(select(LoyaltyLedgerEntry.note)).all()
    assert len(notes) == 2
    assert sum("first_order" in note for note in notes) <= 1
    balance_holds(store)


def test_refunds_of_orders_paid_in_this_and_an_earlier_batch(store, drain):
    put(store, order_event("order.paid", PAID, total="100.00"))
    drain()
    put(
        store,
        order_event("order.refunded", LATER, total="100.00", refund=_refund("r1", "10.00")),
        order_event("order.paid", LATER, order_id="5002", total="50.00"),
        order_event(
            "order.refunded", LATER, order_id="5002", total="50.00", refund=_refund("r9", "25.00")
        ),
    )
    drain()
    # 200 awarded (100 + bonus): 10% back is 20; the second order's 50 points lose half.
    assert ledger(store) == [
        ("5001", "award", 200, "award"),
        ("5001", "reversal", -20, "reversal"),
        ("5002", "award", 50, "award"),
        ("5002", "reversal", -25, "reversal"),
    ]
    balance_holds(store)


def test_a_refund_processed_before_its_payment_is_reversed_when_the_award_comes(store, drain):
    # Webhooks race: the refund reaches the inbox (or another drainer) before the payment.
    put(store, order_event("order.refunded", LATER, total="200.00", refund=_refund("r1", "50.00")))
    assert drain().points == 0  # nothing awarded yet, so nothing to take back
    assert ledger(store) == []

    put(store, order_event("order.paid", PAID, total="200.00"))
    summary = drain()
    # As in order: 300 awarded (200 + 100 bonus), then a quarter of it back for r1.
    assert ledger(store) == [("5001", "award", 300, "award"), ("5001", "reversal", -75, "reversal")]
    assert summary.points == 225

    put(store, order_event("order.refunded", LATER, total="200.00", refund=_refund("r1", "50.00")))
    assert drain().points == 0  # r1 again, from a platform retry: reversed once only
    assert len(ledger(store)) == 2
    balance_holds(store)


def test_an_order_refunded_in_full_before_its_payment_ends_at_zero(store, drain):
    put(
        store,
        order_event("order.refunded", LATER, total="80.00", refund=_refund("r1", "30.00")),
        order_event("order.refunded", LATER, total="80.00", refund=_refund("r2", "50.00")),
    )
    drain()
    put(store, order_event("order.paid", PAID, total="80.00"))
    assert drain().points == 0
    # Each refund takes its share back, the one reaching the order's total all that is left.
    rows = [(kind, points) for _, kind, points, _ in ledger(store)]
    assert rows[0] == ("award", 180)
    assert [kind for kind, _ in rows[1:]] == ["reversal", "reversal"]
    assert sum(points for _, points in rows) == 0
    balance_holds(store)
