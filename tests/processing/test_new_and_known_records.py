"""Upserts of batches that mix new rows and stored ones, and of a new row another worker
inserts while a batch merges it."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from event_journeys import at, order_event, put
from sqlalchemy import func, select

from postpurchase.events import CanonicalEvent
from postpurchase.processing import records as records_module
from postpurchase.processing.batch import CustomerRecord, OrderRecord
from postpurchase.processing.record_rows import load, values
from postpurchase.store.database import engine_of
from postpurchase.store.models import ConsentChange, Customer, Order, OrderItem, OrderRefund


def _refund(order_id: str, refund_id: str, amount: str, moment: str, **kw: object) -> dict:
    # The order's snapshot in a refund event is as it was placed: stale once it was edited.
    return order_event(
        "order.refunded",
        moment,
        order_id=order_id,
        updated_at="2026-03-01T15:00:00+00:00",
        refund={"external_id": refund_id, "amount": amount, "currency": "USD"},
        **kw,
    )


def _orders(store) -> dict[str, Order]:
    with store() as session:
        return {o.external_id: o for o in session.scalars(select(Order))}


def _items(store, order: Order) -> list[str]:
    with store() as session:
        return list(session.scalars(select(OrderItem.title).where(OrderItem.order_id == order.id)))


def test_a_batch_of_new_and_known_orders_and_customers(store, drain):
    put(
        store,
        order_event("order.placed", "2026-03-01T15:00:00+00:00", customer_id="c-1"),
        _refund("5001", "r-1", "20.00", "2026-03-02T10:00:00+00:00", customer_id="c-1"),
    )
    drain()
    edited = order_event(
        "order.updated", "2026-03-03T10:00:00+00:00", customer_id="c-1", total="199.00"
    )
    edited["order"]["lines"] = [
        {"external_id": "5001-2", "title": "Speaker stand", "quantity": 2, "unit_price": "19.90"}
    ]
    newcomer = order_event(
        "order.placed",
        "2026-03-03T11:00:00+00:00",
        order_id="5002",
        customer_id="c-2",
        email="noor@example.com",
    )
    newcomer["order"]["financial_status"] = "paid"
    newcomer["order"]["customer"]["email_marketing_consent"] = True
    noor: dict[str, object] = {"customer_id": "c-2", "email": "noor@example.com"}
    put(
        store,
        CanonicalEvent.model_validate(edited).as_payload(),
        _refund("5001", "r-2", "5.50", "2026-03-03T12:00:00+00:00", customer_id="c-1"),
        CanonicalEvent.model_validate(newcomer).as_payload(),
        _refund("5002", "r-3", "9.00", "2026-03-03T13:00:00+00:00", **noor),
        _refund("5002", "r-3", "9.00", "2026-03-03T13:00:00+00:00", **noor),
    )
    summary = drain()

    orders = _orders(store)
    known, new = orders["5001"], orders["5002"]
    assert (known.total, known.refunded_amount) == (Decimal("199.0000"), Decimal("25.5000"))
    assert _items(store, known) == ["Speaker stand"]  # the stored line is gone
    assert (new.total, new.refunded_amount) == (Decimal("249.0000"), Decimal("9.0000"))
    assert new.paid_at == at("2026-03-03T11:00:00+00:00")  # first seen in a paid status
    assert new.placed_at == at("2026-03-01T15:00:00+00:00")
    assert _items(store, new) == ["Smart speaker"]
    assert summary.refunds == 2
    with store() as session:
        customers = {c.external_id: c for c in session.scalars(select(Customer))}
        consent = session.execute(select(ConsentChange.customer_id, ConsentChange.to_state)).all()
        refunds = session.scalar(select(func.count()).select_from(OrderRefund))
    assert known.customer_id == customers["c-1"].id
    assert new.customer_id == customers["c-2"].id
    assert customers["c-2"].email == "noor@example.com"
    assert [(c, s.value) for c, s in consent] == [(customers["c-2"].id, "granted")]
    assert refunds == 3


def test_a_new_customer_and_order_inserted_meanwhile_by_another_worker(store, drain, monkeypatch):
    if engine_of(store).dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no other worker can insert meanwhile")
    # This worker's event is older than the other's: its snapshot is stale, its payment a fact.
    put(
        store,
        order_event(
            "order.paid",
            "2026-03-01T15:01:00+00:00",
            order_id="5009",
            customer_id="c-9",
            email="old@example.com",
        ),
    )
    later = order_event(
        "order.updated",
        "2026-03-02T10:00:00+00:00",
        order_id="5009",
        customer_id="c-9",
        email="new@example.com",
        total="199.00",
    )
    blanks = records_module.blanks
    asked: list[set[tuple[str, str, str]]] = []

    other: list[str] = []

    def read_as_new(session, record, model, keys):
        if other:  # the other worker's own read
            return blanks(session, record, model, keys)
        asked.append(set(keys))
        if len(asked) == 1:
            # Between this batch's read and its insert, another worker inserts the same
            # customer and order, and commits.
            other.append("busy")
            put(store, later)
            assert sum(drain(worker="other").events.values()) == 1
            other.clear()
        return blanks(session, record, model, keys)

    monkeypatch.setattr(records_module, "blanks", read_as_new)
    summary = drain()

    assert sum(summary.events.values()) == 1 and not summary.failed
    key = ("shopify", "demo.myshopify.com", "c-9")
    assert asked == [{key}, set(), set()]  # merged again, from the rows now stored
    orders = _orders(store)
    assert list(orders) == ["5009"]
    order = orders["5009"]
    assert order.total == Decimal("199.0000")  # the stale snapshot changed nothing
    assert order.paid_at == at("2026-03-01T15:01:00+00:00")
    assert order.source_updated_at == at("2026-03-02T10:00:00+00:00")
    with store() as session:
        customers = session.scalars(select(Customer)).all()
    assert [(c.id, c.email) for c in customers] == [(order.customer_id, "new@example.com")]


def test_a_batch_that_keeps_losing_new_rows_to_another_worker_goes_one_by_one(
    store, drain, monkeypatch, caplog
):
    if engine_of(store).dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no other worker can insert meanwhile")
    mine = [("5101", "c-a"), ("5102", "c-b"), ("5103", "c-c")]
    put(
        store,
        *(
            order_event("order.paid", "2026-03-01T15:01:00+00:00", order_id=o, customer_id=c)
            for o, c in mine
        ),
    )
    blanks = records_module.blanks
    inserted: list[str] = []
    other: list[str] = []

    def read_as_new(session, record, model, keys):
        if not other and model is Customer and keys and len(inserted) < len(mine):
            # Each time this batch reads its customers, another worker inserts one more.
            order_id, customer_id = mine[len(inserted)]
            other.append("busy")
            put(
                store,
                order_event(
                    "order.placed",
                    "2026-03-01T15:00:00+00:00",
                    order_id=order_id,
                    customer_id=customer_id,
                ),
            )
            drain(worker="other")
            other.clear()
            inserted.append(customer_id)
        return blanks(session, record, model, keys)

    monkeypatch.setattr(records_module, "blanks", read_as_new)
    summary = drain()

    assert inserted == ["c-a", "c-b", "c-c"]  # the batch's three attempts each lost one
    assert "retrying one by one" in caplog.text
    assert sum(summary.events.values()) == 3 and not summary.failed
    orders = _orders(store)
    assert sorted(orders) == ["5101", "5102", "5103"]
    assert all(o.paid_at == at("2026-03-01T15:01:00+00:00") for o in orders.values())
    with store() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 3


def test_items_equal_to_the_new_lines_are_kept_and_any_change_replaces_them(store, drain):
    def items():
        with store() as session:
            return session.execute(
                select(OrderItem.id, OrderItem.title, OrderItem.quantity).order_by(OrderItem.id)
            ).all()

    two = [
        {"external_id": "5001-1", "title": "Smart speaker", "quantity": 1, "unit_price": "249"},
        {"external_id": "5001-2", "title": "Speaker stand", "quantity": 1, "unit_price": "19.9"},
    ]

    def event(kind: str, moment: str, lines: list[dict]) -> dict:
        payload = order_event(kind, moment)
        payload["order"]["lines"] = lines
        return CanonicalEvent.model_validate(payload).as_payload()

    put(store, event("order.placed", "2026-03-01T15:00:00+00:00", two))
    drain()
    placed = items()
    put(store, event("order.paid", "2026-03-01T15:01:00+00:00", two))  # the same lines again
    drain()
    assert items() == placed
    put(store, event("order.fulfilled", "2026-03-02T15:00:00+00:00", two[::-1]))
    drain()
    reordered = items()
    assert [(t, q) for _, t, q in reordered] == [("Speaker stand", 1), ("Smart speaker", 1)]
    edited = [{**two[0], "quantity": 2}]
    put(store, event("order.delivered", "2026-03-03T15:00:00+00:00", edited))
    drain()
    assert [(t, q) for _, t, q in items()] == [("Smart speaker", 2)]


def test_only_the_consent_answers_a_snapshot_gives_move_consent(store, drain):
    """Answers left out, or null (as another writer may store them), say nothing; the
    customer's own snapshot answers as well as the order's."""
    placed = order_event("order.placed", "2026-03-01T15:00:00+00:00", customer_id="c-1")
    placed["order"]["customer"]["email_marketing_consent"] = True
    put(store, placed)
    drain()
    silent = order_event("order.paid", "2026-03-02T10:00:00+00:00", customer_id="c-1")
    silent["order"]["customer"].update(
        email_marketing_consent=None, sms_consent=None, sms_marketing_consent_at=None
    )
    answer = {
        "type": "customer.updated",
        "occurred_at": "2026-03-03T10:00:00+00:00",
        "customer": {"external_id": "c-1", "sms_marketing_consent": False},
    }
    put(store, silent, answer)
    drain()

    with store() as session:
        customer = session.scalars(select(Customer)).one()
        changes = session.execute(
            select(ConsentChange.purpose, ConsentChange.to_state).order_by(ConsentChange.id)
        ).all()
    assert [(p.value, s.value) for p, s in changes] == [
        ("email_marketing", "granted"),
        ("sms_marketing", "denied"),
    ]
    assert customer.email_marketing_consent_state.value == "granted"
    assert customer.sms_consent_state.value == "unknown"


def test_stored_rows_are_read_back_with_the_values_and_types_the_orm_gives(store, drain):
    # On PostgreSQL the batch reads them through the driver and types them itself.
    paid = order_event("order.paid", "2026-03-02T10:00:00-05:00", customer_id="c-1")
    paid["customer"] = {"external_id": "c-1", "email_marketing_consent": True}
    put(store, order_event("order.placed", "2026-03-01T15:00:00+00:00", customer_id="c-1"), paid)
    drain()
    with store() as session:
        for record, model in ((CustomerRecord, Customer), (OrderRecord, Order)):
            stored = session.scalars(select(model)).all()
            read = load(session, record, model, {(r.source, r.shop, r.external_id) for r in stored})
            for row in stored:
                expected = [getattr(row, f.name) for f in fields(record)]
                got = values(read[row.source, row.shop, row.external_id])
                assert list(got) == expected
                assert [type(v) for v in got] == [type(v) for v in expected]
                times = [v for v in got if isinstance(v, datetime)]
                assert times and all(v.tzinfo is UTC for v in times)
