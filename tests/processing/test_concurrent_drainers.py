"""Drainers side by side (a DAG run's mapped drain tasks) give what one drainer gives.

The same journeys are stored twice under two sources, so each is a separate set of customers
and orders in one database: once drained by one drainer, once by two at the same time with
small batches, so that one order's events, and one customer's orders, land in batches of both.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from event_journeys import at, order_event, put
from sqlalchemy import func, select

from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.processing.batch import InboxSummary
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT, load_settings
from postpurchase.store.models import (
    ClaimStatus,
    Customer,
    InboxEvent,
    LoyaltyLedgerEntry,
    Order,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.tasks.processing import drain_summary, drainer_slots

NOW = at("2026-03-20T12:00:00+00:00")


def _journeys() -> list[dict]:
    """Thirty orders placed over ten days: each paid, fulfilled and delivered; every fifth
    refunded in part after delivery, every seventh cancelled before fulfillment. Events come
    in a shuffled order, as platforms retry and race.

    Refunded and cancelled orders are their customers' only ones: which of a customer's
    orders gets the first-order bonus follows which payment is processed first, and a
    reversal's share follows that award (by design, in one drainer too)."""
    events = []
    for n in range(30):
        day = 1 + n % 10
        placed = f"2026-03-{day:02d}T10:00:00+00:00"
        alone = n % 5 == 0 or n % 7 == 3
        customer = f"once-{n}" if alone else f"c-{n % 10}"
        common = {
            "order_id": f"70{n:02d}",
            "customer_id": customer,
            "email": f"{customer}@example.com",
            "total": f"{40 + 7 * n}.00",
            "placed_at": placed,
            "product_type": "electronics" if n % 2 else "coffee",
        }
        events.append(order_event("order.placed", placed, **common))
        events.append(order_event("order.paid", f"2026-03-{day:02d}T10:05:00+00:00", **common))
        if n % 7 == 3:
            events.append(
                order_event("order.cancelled", f"2026-03-{day:02d}T12:00:00+00:00", **common)
            )
            continue
        for kind, hours in (("order.fulfilled", 24), ("order.delivered", 72)):
            moment = (at(placed) + timedelta(hours=hours)).isoformat()
            events.append(order_event(kind, moment, **common))
        if n % 5 == 0:
            moment = (at(placed) + timedelta(hours=96)).isoformat()
            refund = {"external_id": f"r{n}", "amount": "10.00", "currency": "USD"}
            events.append(order_event("order.refunded", moment, refund=refund, **common))
    random.Random(7).shuffle(events)
    return events


def _drainer(store, campaigns, loyalty, worker: str, batch_size: int) -> Callable[[], InboxSummary]:
    def run() -> InboxSummary:
        return process_inbox(
            store,
            campaigns,
            worker=worker,
            shop_zone=ZoneInfo("UTC"),
            clock=lambda: NOW,
            batch_size=batch_size,
            loyalty=loyalty,
        )

    return run


def _outcome(store, source: str) -> dict[str, object]:
    """What a drain left for one source: messages to send, points per customer, orders."""
    with store() as session:
        planned = session.execute(
            select(
                Order.external_id,
                Touchpoint.campaign_id,
                Touchpoint.step,
                Touchpoint.channel,
                Touchpoint.due_at,
            )
            .join(Order, Order.id == Touchpoint.order_id)
            # What will be sent. A moot touchpoint is either never planned or planned and
            # cancelled, depending on which batch saw the cancelling event first.
            .where(Order.source == source, Touchpoint.status == TouchpointStatus.PLANNED)
        ).all()
        points = session.execute(
            select(Customer.external_id, func.sum(LoyaltyLedgerEntry.points))
            .join(Customer, Customer.id == LoyaltyLedgerEntry.customer_id)
            .where(Customer.source == source)
            .group_by(Customer.external_id)
        ).all()
        orders = session.execute(
            select(
                Order.external_id,
                Order.refunded_amount,
                Order.cancelled_at,
                Order.delivered_at,
                Customer.external_id,
            )
            .join(Customer, Customer.id == Order.customer_id)
            .where(Order.source == source)
        ).all()
    # a cancelled order's award and reversal (paid first) or no rows at all: 0 points either way
    earned = sorted((customer, total) for customer, total in points if total)
    return {"touchpoints": sorted(planned), "points": earned, "orders": sorted(orders)}


def test_two_drainers_at_once_give_what_one_drainer_gives(store, campaigns):
    loyalty = load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml")
    events = _journeys()
    put(store, *events, source="shopify")
    alone = _drainer(store, campaigns, loyalty, "alone", 1000)()
    assert (alone.failed, alone.retried) == (0, 0)

    put(store, *events, source="woocommerce")
    summaries: list[InboxSummary] = []
    start = threading.Barrier(2)

    def side_by_side(worker: str) -> None:
        start.wait()
        summaries.append(_drainer(store, campaigns, loyalty, worker, 9)())

    threads = [threading.Thread(target=side_by_side, args=(f"drainer-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [s.failed for s in summaries] == [0, 0]
    assert sum((s.events for s in summaries), Counter()) == alone.events
    with store() as session:
        statuses = session.execute(
            select(InboxEvent.status, func.count()).group_by(InboxEvent.status)
        ).all()
    assert statuses == [(ClaimStatus.DONE, 2 * len(events))]
    one, two = _outcome(store, "shopify"), _outcome(store, "woocommerce")
    for key in one:
        assert one[key] == two[key], key
    assert len(one["touchpoints"]) > 60 and one["points"]  # the journeys planned and awarded


def test_a_run_drains_side_by_side_on_postgresql_and_alone_on_sqlite(db_url, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_DRAIN_WORKERS", "3")
    slots = drainer_slots(load_settings())
    assert slots == ([0, 1, 2] if db_url.startswith("postgresql") else [0])


def test_the_run_note_counts_every_drainer():
    first = InboxSummary(
        events=Counter({"order.paid": 3, "order.placed": 2}), planned=4, points=120, failed=1
    )
    first.errors.append("inbox event 9: not a canonical event: type: Field required")
    second = InboxSummary(events=Counter({"order.paid": 1}), planned=2, cancelled=1, retried=1)

    note = drain_summary([first.counts(), second.counts()])

    assert note.splitlines() == [
        "processed 6 event(s); planned 6 touchpoint(s), cancelled 1; loyalty points +120; "
        "1 event(s) failed, 1 to retry",
        "  order.paid: 4",
        "  order.placed: 2",
        "  error: inbox event 9: not a canonical event: type: Field required",
    ]
