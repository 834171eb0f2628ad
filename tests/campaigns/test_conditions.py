"""``when`` conditions evaluated against a genuine Shopify order as planning sees it: results,
and the errors a condition reports instead of raising."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from genuine import genuine

from postpurchase.campaigns.conditions import ConditionError, compile_condition
from postpurchase.campaigns.decisions import customer_context, item_context, order_context
from postpurchase.platforms.shopify import normalise


def _context(**tier):
    body = genuine("shopify/test_notification_orders_create.json")
    event = normalise("orders/create", body, received_at=datetime(2026, 3, 1, tzinfo=UTC))
    assert event is not None and event.order is not None and event.order.customer is not None
    items = [item_context(line) for line in event.order.lines]
    return {
        "order": order_context(event.order, items, points_earned=398),
        "customer": customer_context(event.order.customer),
        "items": items,
        "tier": tier or None,
        "review": None,
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("order.total > 400", True),
        ("order.total > 500", False),
        ("order.points_earned > 0", True),
        ('order.currency == "USD" and order.item_count == 2', True),
        ('"ipod nano - 8gb" in items | map(attribute="title") | map("lower") | list', True),
        ('customer.email_marketing_consent == "granted"', False),
        ("order.cancelled_at is not none", True),
        ("tier is none", True),
    ],
)
def test_a_condition_reads_the_order_its_customer_and_items(source, expected):
    assert compile_condition(source).matches(_context()) is expected


def test_one_condition_answers_each_context_on_its_own():
    vip = compile_condition('tier.to_tier | lower == "vip"')
    answers = [vip.matches(_context(from_tier="Gold", to_tier=to)) for to in ("VIP", "Gold", "vip")]
    assert answers == [True, False, True]


def test_evaluating_leaves_the_context_as_it_was():
    context = _context()
    before = {
        name: dict(value) if isinstance(value, dict) else value for name, value in context.items()
    }
    assert compile_condition("order.total > 400").matches(context)
    assert context == before


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        # the environment's undefined is strict: a misspelt attribute is an error, not false
        ("order.totl > 100", "has no attribute 'totl'"),
        ('order.total > "100"', "not supported between instances of 'decimal.Decimal' and 'str'"),
        # the sandbox refuses what could reach Python's internals
        ("order.__class__.__mro__ is defined", "access to attribute '__class__'"),
    ],
)
def test_a_condition_that_cannot_be_evaluated_says_so(source, problem):
    with pytest.raises(ConditionError) as failure:
        compile_condition(source).matches(_context())
    assert str(failure.value).startswith(f"when {source!r}: ")
    assert problem in str(failure.value)
