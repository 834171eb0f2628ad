"""The planning benchmark's backlog, and its ceiling doing the same writes as the drain."""

import json
import queue
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from benchmarks import planning, planning_ceiling
from postpurchase.campaigns.config import load_campaigns
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.models import Base

ORDERS = 60  # 240 events: the drain takes them in three batches, the ceiling in one


def _as_genuine(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with what the backlog gives each order and customer of its own (ids, name,
    street, email, phone, times) put back to the genuine order's."""
    genuine = planning._genuine()[1]
    order = payload["order"]
    return {
        **order,
        **{
            name: genuine[name]
            for name in ("external_id", "name", "placed_at", "updated_at", "shipping_address_key")
        },
        "lines": [
            {**line, "external_id": ours["external_id"]}
            for line, ours in zip(order["lines"], genuine["lines"], strict=True)
        ],
        "customer": {
            **order["customer"],
            **{n: genuine["customer"][n] for n in ("external_id", "email", "phone", "updated_at")},
        },
    }


def test_every_event_carries_the_genuine_normalised_order_under_its_own_ids():
    genuine = planning._genuine()[1]
    entries = [entry for n in range(4) for entry in planning._events(n)]
    assert [entry.event_type for entry in entries[:4]] == [kind for kind, _ in planning.KINDS]
    events = [json.loads(entry.payload_json) for entry in entries]  # as stored
    assert all(_as_genuine(event) == genuine for event in events)
    orders = {event["order"]["external_id"] for event in events}
    lines = {line["external_id"] for event in events for line in event["order"]["lines"]}
    customers = [event["order"]["customer"]["external_id"] for event in events[::4]]
    assert (len(orders), len(lines), len(set(customers))) == (4, 12, 2)  # two orders each
    assert planning._events(3) == planning._events(3)


# What both write, by platform ids (database ids and timestamps of the write left out). Due
# times differ (the ceiling ignores send windows), as do the points (it awards the total).
_ROWS = {
    "touchpoints": "SELECT c.external_id, o.external_id, t.campaign_id, t.step, t.channel, "
    "t.status, t.reason, t.arm, t.variant FROM touchpoints t "
    "JOIN customers c ON c.id = t.customer_id JOIN orders o ON o.id = t.order_id",
    "customers": "SELECT external_id, email, phone, first_name, last_name, locale, time_zone, "
    "email_marketing_consent_state, email_marketing_consent_source, email_marketing_consent_at, "
    "source_updated_at FROM customers",
    "consent": "SELECT c.external_id, k.purpose, k.from_state, k.to_state, k.source, "
    "k.occurred_at FROM consent_changes k JOIN customers c ON c.id = k.customer_id",
    "addresses": "SELECT c.external_id, k.address_key FROM customer_address_keys k "
    "JOIN customers c ON c.id = k.customer_id",
    "orders": "SELECT external_id, name, total, total_tax, total_discounts, total_shipping, "
    "financial_status, placed_at, paid_at, fulfilled_at, delivered_at, delivery_confirmed_at, "
    "source_updated_at FROM orders",
    "items": "SELECT o.external_id, i.external_id, product_id, variant_id, sku, title, vendor, "
    "product_type, quantity, unit_price FROM order_items i JOIN orders o ON o.id = i.order_id",
    "products": "SELECT source, external_id, tags, collections, lookup_attempts FROM products",
    "awards": "SELECT o.external_id, l.kind, l.cause IS NOT NULL FROM loyalty_ledger l "
    "JOIN orders o ON o.id = l.order_id",
}


def _written(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {name: sorted(map(tuple, conn.execute(text(sql)))) for name, sql in _ROWS.items()}


def _refill(engine: Engine) -> None:
    """Empty tables (ids from 1 again: holdouts hash them) and the backlog's inbox."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    planning._fill(engine, ORDERS)


class _Started:
    def wait(self) -> None:
        pass


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_ceiling_writes_the_rows_the_drain_writes(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the drainer counts statements by wrapping psycopg's cursor: put it back afterwards
    for name in ("execute", "executemany"):
        monkeypatch.setattr(psycopg.Cursor, name, getattr(psycopg.Cursor, name))
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    campaigns = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
    results: queue.Queue[dict[str, Any]] = queue.Queue()

    _refill(engine)
    planning._drain(url, 100, _Started(), results)
    drain = results.get()
    assert (drain["events"], drain["failed"]) == (4 * ORDERS, 0)
    drained = _written(engine)

    _refill(engine)
    plans = planning_ceiling.plans(campaigns, planning._genuine()[0])
    planning_ceiling.drain(url, plans, campaigns.outcomes.salt, _Started(), results)
    assert results.get()["events"] == 4 * ORDERS

    assert _written(engine) == drained
    assert len(drained["touchpoints"]) == 5 * ORDERS  # 1.25 per event
