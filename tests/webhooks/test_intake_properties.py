"""Property: whatever intake accepts, processing stores (SQLite and PostgreSQL).

Events are drawn around every limit of the tables (text lengths, integer and money ranges,
decimal places, times far ahead, unusable contacts, NUL characters). Intake may refuse an
event (4xx, nothing stored) or accept it (202): an accepted event must then be processed and
its order stored with the values intake accepted, never fail in the drain.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from deliveries import Sender, intake_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from postpurchase.store.models import ClaimStatus, InboxEvent, Order, OrderItem
from postpurchase.tasks.processing import drain_inbox
from postpurchase.webhooks.app import create_app

_ids = itertools.count(1)
NOW = datetime.now(UTC)


def _around(limit: int) -> st.SearchStrategy[str]:
    """Text of lengths near ``limit``, sometimes with NUL, accents or emoji."""
    return st.integers(min_value=max(limit - 3, 1), max_value=limit + 3).flatmap(
        lambda n: st.text(min_size=n, max_size=n)
    )


_amounts = st.one_of(
    st.decimals(min_value=-1, max_value=10**13, allow_nan=False, allow_infinity=False, places=4),
    st.decimals(min_value=0, max_value=100, allow_nan=False, allow_infinity=False, places=6),
    st.sampled_from([Decimal("99999999999.9999"), Decimal("100000000000"), Decimal("-0.0001")]),
).map(str)
_times = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.just(UTC),
).map(lambda moment: moment.isoformat())
_recent = st.integers(min_value=-86400 * 400, max_value=3600).map(
    lambda seconds: (NOW + timedelta(seconds=seconds)).isoformat()
)


# Each example pushes one field to its edge; the others stay ordinary, so that about half
# the examples are accepted and go through processing.
_EDGES: dict[str, st.SearchStrategy[Any]] = {
    "name": _around(64),
    "financial_status": _around(32),
    "fulfillment_status": _around(32),
    "currency": st.sampled_from(["usd", "EURO", "XXX", "JPY"]),
    "total": _amounts,
    "updated_at": st.one_of(_recent, _times),
    "occurred_at": st.one_of(_recent, _times),
    "line.external_id": _around(64),
    "line.product_id": _around(64),
    "line.sku": _around(128),
    "line.vendor": _around(255),
    "line.product_type": _around(255),
    "line.title": st.text(min_size=0, max_size=300),
    "line.quantity": st.integers(min_value=-2, max_value=10**20),
    "line.unit_price": _amounts,
    "customer.email": st.one_of(st.emails(), st.text(max_size=40)),
    "customer.phone": st.text(alphabet="0123456789()+- x", max_size=20),
    "customer.first_name": _around(255),
}


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    edge = draw(st.sampled_from(sorted(_EDGES)))
    line: dict[str, Any] = {
        "external_id": "1",
        "title": "Sencha 100 g",
        "quantity": 2,
        "unit_price": "12.50",
        "sku": "SEN-100",
    }
    customer: dict[str, Any] = {"external_id": "c-1", "email": "mia@example.org"}
    order: dict[str, Any] = {
        "external_id": f"P-{next(_ids)}",
        "name": "#1001",
        "currency": "EUR",
        "total": "25.00",
        "updated_at": (NOW - timedelta(hours=1)).isoformat(),
        "lines": [line],
        "customer": customer,
    }
    event: dict[str, Any] = {
        "id": f"evt-{order['external_id']}",
        "type": "order.placed",
        "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
        "order": order,
    }
    part, _, key = edge.rpartition(".")
    target = {"line": line, "customer": customer, "": order}[part]
    if key == "occurred_at":
        target = event
    target[key] = draw(_EDGES[edge])
    return event


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(event=orders())
def test_what_intake_accepts_processing_stores(db_url, store, event):
    intake = intake_settings(db_url)
    with TestClient(create_app(intake, session_factory=store)) as client:
        response = Sender(client).generic(event)
    order_id = event["order"]["external_id"]
    with store() as session:
        rows = session.scalars(select(InboxEvent).where(InboxEvent.subject_id == order_id)).all()
    if response.status_code != 202:
        assert 400 <= response.status_code < 500, response.text
        assert rows == []
        return

    drain_inbox(intake)

    with store() as session:
        [row] = session.scalars(select(InboxEvent).where(InboxEvent.subject_id == order_id))
        assert row.status is ClaimStatus.DONE, row.last_error
        [stored] = session.scalars(select(Order).where(Order.external_id == order_id))
        [item] = session.scalars(select(OrderItem).where(OrderItem.order_id == stored.id))
        # What intake accepted (the inbox payload) is what processing stored.
        accepted = row.payload["order"]
        line = accepted["lines"][0]
        assert stored.total == Decimal(accepted.get("total", "0"))
        assert stored.currency == accepted["currency"]
        for key in ("name", "financial_status", "fulfillment_status"):
            assert getattr(stored, key) == accepted.get(key)
        assert (item.quantity, item.unit_price) == (line["quantity"], Decimal(line["unit_price"]))
        assert item.title == line["title"]
        for key in ("sku", "vendor", "product_type", "product_id"):
            assert getattr(item, key) == line.get(key)
