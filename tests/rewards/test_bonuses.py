"""More ways to earn: sign-up and birthday points, once per cause, through the ledger."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from shop_rewards import NOW
from sqlalchemy import select

from postpurchase.loyalty.ledger import balance
from postpurchase.platforms import shopify as shopify_platform
from postpurchase.rewards.bonuses import give_birthday_points
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    Customer,
    CustomerBirthday,
    LedgerKind,
    LoyaltyLedgerEntry,
)

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


def test_account_created_gives_points_once_and_keeps_the_birthday(store, earning_config, deliver):
    data = json.loads(FIXTURE.read_text())
    data["metafields"] = [
        {"namespace": "facts", "key": "birth_date", "value": "1990-12-02", "type": "date"}
    ]
    event = shopify_platform.normalise("customers/create", data, received_at=NOW)
    assert event is not None and event.type.value == "customer.created"
    assert event.customer is not None and event.customer.birthday == date(1990, 12, 2)
    deliver(event.as_payload(), source="shopify", loyalty=earning_config)
    deliver(event.as_payload(), source="shopify", loyalty=earning_config)  # a second delivery
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


def test_a_published_review_earns_points_once_per_order_and_product(store, config, deliver):
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

    deliver(review("p-1"), source="shopify", loyalty=loyalty)
    deliver(review("p-1"), source="shopify", loyalty=loyalty)  # the same review again
    deliver(review("p-2"), source="shopify", loyalty=loyalty)  # another product of the order
    with transaction(store) as session:
        customer = session.scalars(select(Customer)).one()
        causes = session.scalars(
            select(LoyaltyLedgerEntry.cause).order_by(LoyaltyLedgerEntry.id)
        ).all()
        assert balance(session, customer.id) == 50
    assert [c.rsplit(":", 1)[-1] for c in causes] == ["p-1", "p-2"]
