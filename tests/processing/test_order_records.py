"""Upserts from events that arrive late, twice, partial, or from a worker that died."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from zoneinfo import ZoneInfo

from event_journeys import at, order_event, put, touchpoints
from sqlalchemy import select, update

from postpurchase.events import CanonicalEvent
from postpurchase.processing.batch import InboxSummary, SourcedEvent
from postpurchase.processing.drain import process_batch
from postpurchase.store.database import transaction
from postpurchase.store.inbox_claims import claim_inbox_rows
from postpurchase.store.models import (
    ClaimStatus,
    Customer,
    InboxEvent,
    Order,
    OrderItem,
    Touchpoint,
)
from postpurchase.stored_events import read_stored


def _order(store, external_id="5001"):
    with store() as session:
        return session.scalars(select(Order).where(Order.external_id == external_id)).one()


def test_a_stale_update_is_ignored_but_its_event_still_counts(store, drain):
    fresh = order_event(
        "order.updated",
        "2026-03-02T10:00:00+00:00",
        total="199.00",
        updated_at="2026-03-02T10:00:00+00:00",
    )
    stale = order_event(
        "order.paid",
        "2026-03-01T15:01:00+00:00",
        total="249.00",
        updated_at="2026-03-01T15:01:00+00:00",
    )
    put(store, fresh)
    drain()
    put(store, stale)  # arrives after the newer update
    drain()

    order = _order(store)
    assert order.total == Decimal("199.0000")
    assert order.source_updated_at == at("2026-03-02T10:00:00+00:00")
    assert order.paid_at == at("2026-03-01T15:01:00+00:00")  # the payment did happen


def test_updates_written_in_other_offsets_are_ordered_by_the_instants_they_name(store, drain):
    def update(written: str, total: str) -> dict:
        return order_event("order.updated", written, total=total, updated_at=written)

    put(store, update("2026-03-02T10:00:00-05:00", "199.00"))  # 15:00 UTC
    drain()
    # a later clock in a zone further east, but an earlier instant: stale
    put(store, update("2026-03-02T23:59:00+09:00", "249.00"))  # 14:59 UTC
    drain()
    assert _order(store).total == Decimal("199.0000")
    # the stored instant, written in another offset: the same version, not a stale one
    put(store, update("2026-03-02T16:00:00+01:00", "189.00"))
    drain()

    order = _order(store)
    assert order.total == Decimal("189.0000")
    assert order.source_updated_at == at("2026-03-02T15:00:00+00:00")
    assert order.source_updated_at.tzinfo is UTC


def test_fields_absent_from_a_partial_payload_are_kept(store, drain):
    put(store, order_event("order.placed", "2026-03-01T15:00:00+00:00", phone="+12125550123"))
    drain()
    partial = {
        "type": "order.fulfilled",
        "occurred_at": "2026-03-03T14:00:00+00:00",
        "order": {
            "external_id": "5001",
            "currency": "USD",
            "fulfillment_status": "fulfilled",
            "updated_at": "2026-03-03T14:00:00+00:00",
            "customer": {"external_id": "c-77", "email": "mara@example.com"},
        },
    }
    put(store, CanonicalEvent.model_validate(partial).as_payload())
    drain()

    order = _order(store)
    with store() as session:
        customer = session.scalars(select(Customer)).one()
        items = session.scalars(select(OrderItem)).all()
    assert (order.name, order.total, order.fulfillment_status) == (
        "#5001",
        Decimal("249.0000"),
        "fulfilled",
    )
    assert order.fulfilled_at == at("2026-03-03T14:00:00+00:00")
    assert (customer.phone, customer.first_name, customer.time_zone) == (
        "+12125550123",
        "Mara",
        "America/New_York",
    )
    assert [i.title for i in items] == ["Smart speaker"]


def test_refunds_add_up_once_per_refund_id(store, drain):
    def refund(refund_id, amount, moment):
        return order_event(
            "order.refunded",
            moment,
            refund={"external_id": refund_id, "amount": amount, "currency": "USD"},
        )

    put(store, refund("r-1", "20.00", "2026-03-05T10:00:00+00:00"))
    put(store, refund("r-1", "20.00", "2026-03-05T10:00:00+00:00"))  # redelivered
    put(store, refund("r-2", "5.50", "2026-03-06T10:00:00+00:00"))
    drain()
    put(store, refund("r-2", "5.50", "2026-03-06T10:00:00+00:00"))  # again, in a later run
    drain()

    assert _order(store).refunded_amount == Decimal("25.5000")


def test_new_lines_replace_the_items_of_an_order(store, drain):
    put(store, order_event("order.placed", "2026-03-01T15:00:00+00:00"))
    drain()
    edited = order_event("order.updated", "2026-03-01T16:00:00+00:00")
    edited["order"]["lines"] = [
        {"external_id": "5001-2", "title": "Speaker stand", "quantity": 2, "unit_price": "19.90"}
    ]
    put(store, CanonicalEvent.model_validate(edited).as_payload())
    drain()

    with store() as session:
        items = session.execute(
            select(OrderItem.title, OrderItem.quantity, OrderItem.unit_price)
        ).all()
    assert items == [("Speaker stand", 2, Decimal("19.9000"))]


def _three_events():
    return [
        order_event("order.placed", "2026-03-01T15:00:00+00:00"),
        order_event("order.paid", "2026-03-01T15:01:00+00:00"),
        order_event("order.delivered", "2026-03-06T17:00:00+00:00"),
    ]


def _inbox(store):
    with store() as session:
        return {(r.status, r.attempts) for r in session.scalars(select(InboxEvent))}


def test_a_claimant_killed_mid_batch_loses_nothing(store, drain):
    put(store, *_three_events())
    claimed_at = at("2026-03-20T12:00:00+00:00")
    # The doomed worker claims the batch and gets half-way through it, then dies: its
    # transaction, the claim's included, never commits.
    with store() as session, session.begin():
        rows = claim_inbox_rows(session, worker="doomed", now=claimed_at, limit=10)
        items = [SourcedEvent(r.id, r.source, read_stored(r.payload)) for r in rows]
        process_batch(
            session,
            items[:2],
            _campaigns(),
            shop_zone=ZoneInfo("UTC"),
            now=claimed_at,
            summary=InboxSummary(),
        )
        session.rollback()
    assert _inbox(store) == {(ClaimStatus.PENDING, 0)}

    # No lease to wait for: the next run takes the rows at once and does everything once.
    summary = drain(now="2026-03-20T12:01:00+00:00")

    assert sum(summary.events.values()) == 3
    assert _inbox(store) == {(ClaimStatus.DONE, 1)}
    assert len(touchpoints(store)) == 5


def test_rows_an_earlier_version_left_claimed_come_back_when_their_lease_runs_out(store, drain):
    put(store, *_three_events())
    with transaction(store) as session:  # claimed by a worker of the previous version
        session.execute(
            update(InboxEvent).values(
                status=ClaimStatus.CLAIMED,
                claimed_by="old",
                lease_until=at("2026-03-20T12:05:00+00:00"),
                attempts=1,
            )
        )

    # Within the lease nobody else may take the rows ...
    assert sum(drain(now="2026-03-20T12:04:00+00:00").events.values()) == 0
    # ... after it, the next run takes over and does everything once.
    summary = drain(now="2026-03-20T12:06:00+00:00")

    assert sum(summary.events.values()) == 3
    assert _inbox(store) == {(ClaimStatus.DONE, 2)}
    assert len(touchpoints(store)) == 5


def _campaigns():
    from postpurchase.campaigns.config import load_campaigns
    from postpurchase.settings import PROJECT_ROOT

    return load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")


def test_an_event_that_does_not_know_the_currency_keeps_the_orders_own(store, drain):
    put(store, order_event("order.placed", "2026-03-01T15:00:00+00:00"))
    drain()
    delivered = {  # a carrier's fulfillment event: the order id, nothing else of the order
        "type": "order.delivered",
        "occurred_at": "2026-03-04T09:00:00+00:00",
        "order": {"external_id": "5001", "currency": "XXX"},
        "shipment": {"status": "delivered"},
    }
    put(store, delivered)
    drain()

    order = _order(store)
    assert order.currency == "USD"
    assert order.delivered_at == at("2026-03-04T09:00:00+00:00")


def test_a_partial_order_without_its_currency_sets_the_rest_it_carries(store, drain):
    put(store, order_event("order.placed", "2026-03-01T15:00:00+00:00", phone="+12125550123"))
    drain()
    fulfilled = {  # an update that does not know the currency and gives some fields as null
        "type": "order.fulfilled",
        "occurred_at": "2026-03-03T14:00:00+00:00",
        "order": {
            "external_id": "5001",
            "currency": "XXX",
            "name": "#5001-F",
            "fulfillment_status": "fulfilled",
            "placed_at": None,
            "updated_at": "2026-03-03T14:00:00+00:00",
            "customer": {"external_id": "c-77", "phone": None, "first_name": "Mára"},
        },
    }
    put(store, CanonicalEvent.model_validate(fulfilled).as_payload())
    drain()

    order = _order(store)
    with store() as session:
        customer = session.scalars(select(Customer)).one()
    assert (order.currency, order.name, order.fulfillment_status, order.total) == (
        "USD",
        "#5001-F",
        "fulfilled",
        Decimal("249.0000"),
    )
    # a null says nothing: the stored value stays
    assert order.placed_at == at("2026-03-01T15:00:00+00:00")
    assert (customer.phone, customer.first_name) == ("+12125550123", "Mára")


def _journey(order_id: str, customer_id: str) -> list[dict]:
    """An order's events in the order they arrive: an older update last, delivery first."""
    return [
        order_event(
            "order.delivered",
            "2026-03-04T10:00:00+00:00",
            order_id=order_id,
            customer_id=customer_id,
            updated_at="2026-03-04T10:00:00+00:00",
        ),
        order_event(
            "order.placed",
            "2026-03-01T15:00:00+00:00",
            order_id=order_id,
            customer_id=customer_id,
            updated_at="2026-03-01T15:00:00+00:00",
        ),
        order_event(
            "order.paid",
            "2026-03-01T15:05:00+00:00",
            order_id=order_id,
            customer_id=customer_id,
            total="199.00",
            updated_at="2026-03-05T09:00:00+00:00",
        ),
        order_event(
            "order.fulfilled",
            "2026-03-02T09:00:00+00:00",
            order_id=order_id,
            customer_id=customer_id,
            total="149.00",
            updated_at="2026-03-02T09:00:00+00:00",
        ),
    ]


def _order_state(store, external_id):
    order = _order(store, external_id)
    with store() as session:
        customer = session.get(Customer, order.customer_id)
        items = session.execute(
            select(OrderItem.title, OrderItem.quantity).where(OrderItem.order_id == order.id)
        ).all()
        planned = session.execute(
            select(Touchpoint.campaign_id, Touchpoint.step, Touchpoint.channel, Touchpoint.due_at)
            .where(Touchpoint.order_id == order.id)
            .order_by(Touchpoint.campaign_id, Touchpoint.step, Touchpoint.channel)
        ).all()
    fields = ("total", "placed_at", "paid_at", "fulfilled_at", "delivered_at", "source_updated_at")
    assert customer is not None
    return (
        {name: getattr(order, name) for name in fields},
        (customer.email, customer.time_zone),
        items,
        planned,
    )


def test_events_of_one_order_in_one_batch_end_as_in_separate_batches(store, drain):
    put(store, *_journey("5001", "c-1"))  # one batch
    drain()
    for payload in _journey("5002", "c-2"):  # one batch per event
        put(store, payload)
        drain()

    together, apart = _order_state(store, "5001"), _order_state(store, "5002")
    assert together == apart
    assert together[0]["total"] == Decimal("199.0000")  # the newest update wins
    assert together[0]["delivered_at"] == at("2026-03-04T10:00:00+00:00")
    assert together[3]  # delivery campaigns were planned


def test_an_order_and_its_customer_both_new_in_one_batch(store, drain):
    put(store, order_event("order.delivered", "2026-03-04T10:00:00+00:00", customer_id="c-new"))
    summary = drain()

    order = _order(store)
    with store() as session:
        customer = session.scalars(select(Customer).where(Customer.external_id == "c-new")).one()
        planned = session.scalars(select(Touchpoint.customer_id)).all()
    assert order.customer_id == customer.id
    assert customer.email == "mara@example.com"
    assert summary.planned > 0
    assert set(planned) == {customer.id}


def test_an_event_that_does_not_name_the_customer_plans_for_the_orders_own(store, drain):
    put(store, order_event("order.placed", "2026-03-01T15:00:00+00:00"))
    drain()
    delivered = {
        "type": "order.delivered",
        "occurred_at": "2026-03-04T10:00:00+00:00",
        "order": {"external_id": "5001", "currency": "USD"},
    }
    put(store, CanonicalEvent.model_validate(delivered).as_payload())
    summary = drain()

    with store() as session:
        customer = session.scalars(select(Customer)).one()
        planned = session.scalars(
            select(Touchpoint.customer_id).where(Touchpoint.campaign_id == "delivery_checkin")
        ).all()
    assert summary.planned > 0
    assert planned and set(planned) == {customer.id}
