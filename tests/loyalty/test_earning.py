from datetime import UTC, datetime
from decimal import Decimal

import pytest

from postpurchase.loyalty.config import Rounding
from postpurchase.loyalty.earning import add_months, award_for, round_points
from postpurchase.store.models import Order, OrderItem


@pytest.mark.parametrize(
    ("value", "down", "nearest", "up"),
    [
        ("10.5", 10, 11, 11),
        ("10.49", 10, 10, 11),
        ("10", 10, 10, 10),
        ("0.01", 0, 0, 1),
        ("-2.5", -3, -3, -2),  # floor and ceiling, never towards zero by accident
    ],
)
def test_rounding_rules(value, down, nearest, up):
    amount = Decimal(value)
    assert round_points(amount, Rounding.DOWN) == down
    assert round_points(amount, Rounding.NEAREST) == nearest
    assert round_points(amount, Rounding.UP) == up


def _order(subtotal, **fields):
    return Order(
        currency="USD",
        subtotal=Decimal(subtotal),
        total_discounts=Decimal(fields.get("discounts", "0")),
        total_tax=Decimal(fields.get("tax", "0")),
        total_shipping=Decimal(fields.get("shipping", "0")),
    )


@pytest.mark.parametrize(
    ("multiplier", "rounding", "expected"),
    [("1", "down", 33), ("1.25", "down", 41), ("1.25", "nearest", 42), ("2", "up", 67)],
)
def test_tier_multiplier_applies_before_rounding(make_config, multiplier, rounding, expected):
    config = make_config(earning={"rounding": rounding})
    award = award_for(
        _order("33.45"), [], first_order=False, multiplier=Decimal(multiplier), config=config
    )
    assert award.points == expected  # 33.45 x 1.25 = 41.8125; x 2 = 66.9


def test_basis_options_and_bonus_breakdown(make_config):
    config = make_config(
        earning={"include_tax": True, "include_shipping": True, "subtract_discounts": True},
        bonuses=[
            {"name": "welcome", "first_order": True, "points": 100},
            {"name": "vinyl", "product_type": "Vinyl", "points": 5, "points_per_unit": "0.5"},
        ],
    )
    items = [
        OrderItem(product_type="vinyl", quantity=2, unit_price=Decimal("24.99")),
        OrderItem(product_type="Poster", quantity=1, unit_price=Decimal("10.00")),
    ]
    order = _order("59.98", discounts="9.98", tax="9.50", shipping="4.90")
    award = award_for(order, items, first_order=True, multiplier=Decimal("1"), config=config)
    # 59.98 - 9.98 + 9.50 + 4.90 = 64.40 -> 64; vinyl: 5 + floor(49.98 * 0.5) = 29.
    assert (award.base, award.bonuses, award.points) == (64, (("welcome", 100), ("vinyl", 29)), 193)
    assert award.note == "base 64, welcome +100, vinyl +29"


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2026, 1, 31, 8, tzinfo=UTC), 1, datetime(2026, 2, 28, 8, tzinfo=UTC)),
        (datetime(2027, 12, 15, tzinfo=UTC), 2, datetime(2028, 2, 15, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), 12, datetime(2029, 2, 28, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), -1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 10, tzinfo=UTC), -13, datetime(2024, 12, 10, tzinfo=UTC)),
        (datetime(2026, 1, 28, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 29, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2027, 12, 30, tzinfo=UTC), 2, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2028, 1, 29, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 5, 31, tzinfo=UTC), 1, datetime(2026, 6, 30, tzinfo=UTC)),
        (datetime(2026, 6, 30, tzinfo=UTC), 1, datetime(2026, 7, 30, tzinfo=UTC)),
        (datetime(2026, 7, 31, tzinfo=UTC), 1, datetime(2026, 8, 31, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_the_day(start, months, expected):
    assert add_months(start, months) == expected
