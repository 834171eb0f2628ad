"""Two drainers side by side (PostgreSQL) on batches that describe and name the same new
products in every order: no deadlock, no batch retried, every product described once."""

from __future__ import annotations

import logging
import random
import threading
from zoneinfo import ZoneInfo

import pytest
from event_journeys import at, put
from sqlalchemy import select

from postpurchase.campaigns.config import load_campaigns
from postpurchase.events import CanonicalEvent
from postpurchase.processing.batch import InboxSummary
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.models import ClaimStatus, InboxEvent, Product

NOW = at("2026-11-20T15:00:00+00:00")
PRODUCTS = [str(8_100 + n) for n in range(12)]


def _events() -> list[dict]:
    rng = random.Random(11)
    events = []
    for n, product_id in enumerate(PRODUCTS):
        product = {
            "external_id": product_id,
            "title": f"Product {n}",
            "product_type": "Electronics" if n % 2 else "Accessories",
            "tags": ["demo"],
            "updated_at": f"2026-11-0{1 + n % 9}T10:00:00+00:00",
        }
        events.append(
            {"type": "product.updated", "occurred_at": product["updated_at"], "product": product}
        )
    for n in range(80):
        names = rng.sample(PRODUCTS, 3)
        order = {
            "external_id": f"9{n:03d}",
            "currency": "USD",
            "total": "30.00",
            "updated_at": "2026-11-10T10:00:00+00:00",
            "lines": [
                {
                    "external_id": f"9{n:03d}-{i}",
                    "product_id": p,
                    "title": f"Line {i}",
                    "quantity": 1,
                    "unit_price": "10.00",
                }
                for i, p in enumerate(names)
            ],
            "customer": {"external_id": f"c-{n % 9}", "email": f"c{n % 9}@example.com"},
        }
        events.append(
            {"type": "order.paid", "occurred_at": "2026-11-10T10:00:00+00:00", "order": order}
        )
    rng.shuffle(events)
    return [CanonicalEvent.model_validate(e).as_payload() for e in events]


@pytest.mark.postgres
def test_two_drainers_share_new_products_without_deadlock(db_url, store, caplog):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: drainers never run side by side")
    put(store, *_events())
    campaigns = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
    results: list[InboxSummary] = []

    def drain(worker: str) -> None:
        results.append(
            process_inbox(
                store,
                campaigns,
                worker=worker,
                shop_zone=ZoneInfo("UTC"),
                clock=lambda: NOW,
                batch_size=7,
            )
        )

    with caplog.at_level(logging.WARNING, logger="postpurchase.processing.drain"):
        threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert [r.failed for r in results] == [0, 0]
    assert not [r for r in caplog.records if "retrying one by one" in r.getMessage()]
    with store() as session:
        statuses = set(session.scalars(select(InboxEvent.status)))
        products = session.scalars(select(Product)).all()
    assert statuses == {ClaimStatus.DONE}
    assert sorted(p.external_id for p in products) == PRODUCTS
    assert all(p.source_updated_at is not None for p in products)
