"""More ways to earn: sign-up and birthday points, once per cause, through the ledger."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from postpurchase.campaigns.config import load_campaigns
from postpurchase.loyalty.ledger import balance
from postpurchase.platforms import shopify as shopify_platform
from postpurchase.processing.drain import process_inbox
from postpurchase.rewards.bonuses import give_birthday_points
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Customer,
    CustomerBirthday,
    InboxEvent,
    LedgerKind,
    LoyaltyLedgerEntry,
)

from .conftest import NOW

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "customers_update.json"


@pytest.fixture
def earning_config(config):
    return config.model_copy(
        update={
            "more_ways_to_earn": config.more_ways_to_earn.model_copy(
                update={"account_created": 50, "birthday": 200}
            )
        }
    )


def _deliver(store, payload, n, loyalty):
    with transaction(store) as session:
        session.add(
            InboxEvent(
                source="shopify",
                dedupe_key=f"bonus-test:{n}",
                event_type=payload["type"],
                occurred_at=NOW,
                payload=payload,
            )
        )
    process_inbox(
        store,
        load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
        worker="test",
        shop_zone=ZoneInfo("UTC"),
        lease=timedelta(minutes=5),
        clock=lambda: NOW,
        loyalty=loyalty,
    )


def test_account_created_gives_points_once_and_keeps_the_birthday(store, earning_config):
    data = json.loads(FIXTURE.read_text())
    data["metafields"] = [
        {"namespace": "facts", "key": "birth_date", "value": "1990-12-02", "type": "date"}
    ]
    event = shopify_platform.normalise("customers/create", data, received_at=NOW)
    assert event is not None and event.type.value == "customer.created"
    assert event.customer is not None and event.customer.birthday == date(1990, 12, 2)
    _deliver(store, event.as_payload(), 1, earning_config)
    _deliver(store, event.as_payload(), 2, earning_config)  # a second delivery
    with transaction(store) as session:
        customer = session.scalars(select(Customer)).one()
        rows = session.scalars(select(LoyaltyLedgerEntry)).all()
        assert [(r.kind, r.points, r.cause) for r in rows] == [
            (LedgerKind.BONUS, 50, f"bonus:account_created:{customer.id}")
        ]
        kept = session.get_one(CustomerBirthday, customer.id)
        assert (kept.month, kept.day) == (12, 2)
        # On the day, and on a later run within the week: once.
        assert give_birthday_points(session, config=earning_config, today=date(2026, 12, 1)) == 0
        assert give_birthday_points(session, config=earning_config, today=date(2026, 12, 2)) == 1
        assert give_birthday_points(session, config=earning_config, today=date(2026, 12, 5)) == 0
        assert balance(session, customer.id) == 250
        # A week late is too late; next year it comes again.
        assert give_birthday_points(session, config=earning_config, today=date(2027, 12, 9)) == 0
        assert give_birthday_points(session, config=earning_config, today=date(2027, 12, 3)) == 1
        assert balance(session, customer.id) == 450


def test_leap_day_birthdays_count_on_28_february(store, earning_config, customer_with):
    customer = customer_with(0)
    with transaction(store) as session:
        session.add(CustomerBirthday(customer_id=customer, month=2, day=29))
    with transaction(store) as session:
        assert give_birthday_points(session, config=earning_config, today=date(2027, 2, 27)) == 0
        assert give_birthday_points(session, config=earning_config, today=date(2027, 2, 28)) == 1
        assert give_birthday_points(session, config=earning_config, today=date(2028, 2, 29)) == 1
        causes = session.scalars(select(LoyaltyLedgerEntry.cause)).all()
    assert causes == [f"bonus:birthday:{customer}:2027", f"bonus:birthday:{customer}:2028"]


def test_no_points_configured_gives_nothing(store, config, customer_with):
    customer = customer_with(0)
    with transaction(store) as session:
        session.add(CustomerBirthday(customer_id=customer, month=11, day=30))
        assert give_birthday_points(session, config=config, today=NOW.date()) == 0


def test_a_published_review_earns_points_once_per_order_and_product(store, config):
    loyalty = config.model_copy(
        update={
            "more_ways_to_earn": config.more_ways_to_earn.model_copy(update={"review": 25}),
            "earning": config.earning.model_copy(update={"points_per_unit": 0}),
        }
    )
    order = {
        "external_id": "4411",
        "currency": "USD",
        "customer": {"external_id": "rev-1", "email": "reviewer@example.com"},
    }

    def review(product):
        return {
            "type": "review.submitted",
            "occurred_at": NOW.isoformat(),
            "order": order,
            "review": {"rating": 5, "product_id": product},
        }

    _deliver(store, review("p-1"), 10, loyalty)
    _deliver(store, review("p-1"), 11, loyalty)  # the same review again
    _deliver(store, review("p-2"), 12, loyalty)  # another product of the order
    with transaction(store) as session:
        customer = session.scalars(select(Customer)).one()
        causes = session.scalars(
            select(LoyaltyLedgerEntry.cause).order_by(LoyaltyLedgerEntry.id)
        ).all()
        assert balance(session, customer.id) == 50
    assert [c.rsplit(":", 1)[-1] for c in causes] == ["p-1", "p-2"]
