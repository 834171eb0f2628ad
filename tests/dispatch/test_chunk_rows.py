"""A chunk's rows read as plain records hold what the ORM reads of the same rows (SQLite and
PostgreSQL: on PostgreSQL psycopg reads them and the enums are typed by hand)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fakes.fixtures import add_customer, add_order, add_touchpoint
from sqlalchemy import select

from postpurchase.dispatch.chunk_rows import (
    CustomerRow,
    ItemRow,
    OrderRow,
    TouchpointRow,
    read_customers,
    read_orders,
    read_touchpoints,
)
from postpurchase.dispatch.deciding import GatePolicy, recent_sends
from postpurchase.store.database import reading, transaction
from postpurchase.store.models import (
    Channel,
    ConsentState,
    Customer,
    Order,
    OrderItem,
    Touchpoint,
    TouchpointStatus,
)

DUE = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def _seed(store):
    """Rows with every kind of value dispatch reads: consents in each state, missing names and
    phone, a refunded and cancelled order with two lines, touchpoints held or not."""
    with transaction(store) as session:
        plain = add_customer(session)
        other = add_customer(
            session,
            phone=None,
            first_name=None,
            locale=None,
            time_zone=None,
            email_marketing_consent_state=ConsentState.DENIED,
            sms_consent_state=ConsentState.UNKNOWN,
        )
        order = add_order(session, plain)
        cancelled = add_order(
            session,
            other,
            name=None,
            refunded_amount=Decimal("12.50"),
            cancelled_at=datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
            delivery_confirmed_at=datetime(2026, 11, 15, 10, 0, tzinfo=UTC),
            tracking_url="https://track.example.net/1",
        )
        cancelled.items.append(
            OrderItem(external_id="li-2", title="Socks", quantity=3, unit_price=Decimal("9.99"))
        )
        held = [
            add_touchpoint(
                session,
                plain,
                order,
                "delivery_checkin",
                Channel.EMAIL,
                DUE,
                status=TouchpointStatus.CLAIMED,
                claimed_by="w",
                variant="b",
                attempts=2,
            ),
            add_touchpoint(
                session,
                other,
                None,
                "win_back",
                Channel.SMS,
                datetime(2026, 11, 27, 13, 0, tzinfo=UTC),
                status=TouchpointStatus.SENDING,
                claimed_by="w",
                shop="north",
            ),
        ]
        elsewhere = add_touchpoint(
            session,
            other,
            cancelled,
            "review_request",
            Channel.EMAIL,
            DUE,
            status=TouchpointStatus.CLAIMED,
            claimed_by="another",
        )
        planned = add_touchpoint(session, plain, order, "setup_tips", Channel.EMAIL, DUE)
        return (
            [t.id for t in held],
            [elsewhere.id, planned.id],
            [plain.id, other.id],
            [order.id, cancelled.id],
        )


def _as_orm(record, stored):
    """``stored`` (an ORM row) as the record type of ``record``, field by field."""
    return type(record)._make(getattr(stored, name) for name in record._fields)


def test_chunk_rows_hold_what_the_orm_reads(store):
    held, not_held, customer_ids, order_ids = _seed(store)
    with reading(store) as session:
        touchpoints = read_touchpoints(session, "w", [*held, *not_held])
        customers = read_customers(session, customer_ids)
        orders = read_orders(session, order_ids)
    with reading(store) as session:
        stored_touchpoints = session.scalars(
            select(Touchpoint).where(Touchpoint.id.in_(held)).order_by(Touchpoint.due_at)
        ).all()
        assert [t.id for t in touchpoints] == [t.id for t in stored_touchpoints] == held[::-1]
        for record, stored in zip(touchpoints, stored_touchpoints, strict=True):
            assert isinstance(record, TouchpointRow)
            assert record == _as_orm(record, stored)
            assert type(record.channel) is Channel and type(record.status) is TouchpointStatus
        assert customers.keys() == set(customer_ids)
        for customer_id, record in customers.items():
            assert isinstance(record, CustomerRow)
            assert record == _as_orm(record, session.get(Customer, customer_id))
            assert all(
                type(getattr(record, name)) is ConsentState
                for name in record._fields
                if name.endswith("_consent_state")
            )
        assert orders.keys() == set(order_ids)
        for order_id, record in orders.items():
            stored = session.get(Order, order_id)
            assert isinstance(record, OrderRow)
            lines = [
                _as_orm(ItemRow._make([0] * 7), item)
                for item in sorted(stored.items, key=lambda item: item.id)
            ]
            assert record.items == lines
            assert record[:-1] == _as_orm(record, stored)[:-1]
            assert [type(v) for v in record[:-1]] == [type(v) for v in _as_orm(record, stored)[:-1]]
    assert len(orders[order_ids[1]].items) == 2


def test_chunk_rows_of_nothing(store):
    with reading(store) as session:
        assert read_touchpoints(session, "w", []) == []
        assert read_customers(session, []) == {}
        assert read_orders(session, []) == {}


def test_recent_sends_are_the_customers_touchpoints_sent_within_the_windows(store):
    """What smart sending counts: the touchpoints of the chunk's customers sent within the
    longer window (24 h, SMS), by customer and channel (typed as the ORM types it); not one
    sent before, one never sent, nor another customer's."""
    sent = TouchpointStatus.SENT
    with transaction(store) as session:
        one, two, other = (add_customer(session) for _ in range(3))
        order = add_order(session, one)

        def touchpoint(customer, campaign, channel, hours_ago, status=sent):
            at = DUE - timedelta(hours=hours_ago)
            about = order if customer is one else None
            add_touchpoint(
                session, customer, about, campaign, channel, at, status=status, sent_at=at
            )

        touchpoint(one, "delivery_checkin", Channel.EMAIL, 1)
        touchpoint(one, "review_request", Channel.EMAIL, 15)
        touchpoint(one, "win_back", Channel.SMS, 23)
        touchpoint(one, "setup_tips", Channel.EMAIL, 25)  # before the window
        touchpoint(two, "delivery_checkin", Channel.SMS, 2, TouchpointStatus.FAILED)
        touchpoint(other, "delivery_checkin", Channel.EMAIL, 1)  # not in the chunk
        ids = [one.id, two.id]
    with reading(store) as session:
        recent = recent_sends(session, ids, DUE, lookup=lambda _: None, policy=GatePolicy())
    assert {key: sorted(times) for key, times in recent.items()} == {
        (ids[0], Channel.EMAIL): [DUE - timedelta(hours=15), DUE - timedelta(hours=1)],
        (ids[0], Channel.SMS): [DUE - timedelta(hours=23)],
    }
    assert all(type(channel) is Channel for _, channel in recent)
    with reading(store) as session:
        assert recent_sends(session, [], DUE, lookup=lambda _: None, policy=GatePolicy()) == {}
