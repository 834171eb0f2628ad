"""Fixtures for the review tests: the app with a known signing secret, and signed links."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fastapi.testclient import TestClient
from review_links import BASE, SECRET, SENT

from postpurchase.store.database import transaction
from postpurchase.store.models import Channel, OrderItem
from postpurchase.webhooks.app import create_app


@pytest.fixture
def client(db_url, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("POSTPURCHASE_SHOP_NAME", "Northline Outdoor")
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def reviewable(store):
    """Chloé's delivered order (a sweater in two sizes and a beanie) and its review request."""
    with transaction(store) as session:
        chloe = add_customer(session, first_name="Chloé", last_name="Martin")
        order = add_order(session, chloe)
        order.items.append(
            OrderItem(
                external_id="li-2",
                product_id="p-77",
                title="Merino Wool Crew Sweater, Forest Green, Size L",
                quantity=1,
                unit_price=Decimal("129.00"),
            )
        )
        order.items.append(
            OrderItem(
                external_id="li-3",
                product_id="p-81",
                title="Ribbed Beanie, Charcoal",
                quantity=2,
                unit_price=Decimal("24.50"),
            )
        )
        session.flush()
        tp = add_touchpoint(session, chloe, order, "review_request", Channel.EMAIL, SENT)
        return {"customer": chloe.id, "order": order.id, "touchpoint": tp.id}
