"""Fixtures for the review tests: the app with a known signing secret, and signed links."""

from __future__ import annotations

from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import pytest
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fastapi.testclient import TestClient
from review_links import BASE, SECRET, SENT

from postpurchase.settings import Settings
from postpurchase.store.database import transaction
from postpurchase.store.models import Channel, OrderItem
from postpurchase.webhooks.app import create_app


@pytest.fixture
def app_client(db_url, store):
    """``app_client(**settings)``: a client of the app built with the review tests' settings
    and these."""
    with ExitStack() as clients:

        def make(**overrides: Any) -> TestClient:
            settings = Settings(
                database_url=db_url,
                public_base_url=BASE,
                signing_secret=SECRET,
                shop_name="Northline Outdoor",
                **overrides,
            )
            return clients.enter_context(TestClient(create_app(settings, session_factory=store)))

        yield make


@pytest.fixture
def client(app_client):
    return app_client()


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
