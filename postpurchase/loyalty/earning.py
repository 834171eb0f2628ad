"""How many points an order earns: pure arithmetic on Decimals, no database.

    points = round(basis * points_per_unit * tier multiplier)
           + sum of matching bonuses (flat points + points_per_unit on the matching amount)

The basis is the order's subtotal, less discounts, plus tax and shipping as configured. Each
part is rounded once, with the configured rule, after all Decimal arithmetic is done.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Protocol

from postpurchase.loyalty.config import Bonus, Earning, LoyaltyConfig, Rounding


class OrderAmounts(Protocol):
    """What earning reads of an order: a stored row, or the values a batch holds for it."""

    @property
    def subtotal(self) -> Decimal: ...
    @property
    def total_discounts(self) -> Decimal: ...
    @property
    def total_tax(self) -> Decimal: ...
    @property
    def total_shipping(self) -> Decimal: ...


class BonusLine(Protocol):
    """What bonuses read of an order line: a stored item, or a row with its product's type
    from the catalogue."""

    @property
    def product_id(self) -> str | None: ...
    @property
    def product_type(self) -> str | None: ...
    @property
    def vendor(self) -> str | None: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price(self) -> Decimal: ...


_ROUNDING_MODES = {
    Rounding.DOWN: ROUND_FLOOR,
    Rounding.NEAREST: ROUND_HALF_UP,
    Rounding.UP: ROUND_CEILING,
}


def round_points(value: Decimal, rule: Rounding) -> int:
    """Whole points from a Decimal, by ``rule`` (down and up are floor and ceiling)."""
    return int(value.to_integral_value(rounding=_ROUNDING_MODES[rule]))


def earning_basis(order: OrderAmounts, earning: Earning) -> Decimal:
    """The amount points are earned on; never below zero."""
    basis = order.subtotal
    if earning.subtract_discounts:
        basis -= order.total_discounts
    if earning.include_tax:
        basis += order.total_tax
    if earning.include_shipping:
        basis += order.total_shipping
    return max(basis, Decimal("0"))


def _same(wanted: str | None, actual: str | None) -> bool:
    return wanted is None or (actual is not None and wanted.casefold() == actual.casefold())


def _matches(bonus: Bonus, item: BonusLine) -> bool:
    # ``_same`` at module level: a function defined here was made again for every line
    return (
        _same(bonus.product_type, item.product_type)
        and _same(bonus.vendor, item.vendor)
        and _same(bonus.product_id, item.product_id)
    )


@dataclass(frozen=True)
class Award:
    """Points for one order and how they were made up (kept as the ledger row's note)."""

    points: int
    base: int
    bonuses: tuple[tuple[str, int], ...]

    @property
    def note(self) -> str:
        parts = [f"base {self.base}"] + [f"{name} +{points}" for name, points in self.bonuses]
        return ", ".join(parts)


def award_for(
    order: OrderAmounts,
    items: Sequence[BonusLine],
    *,
    first_order: bool,
    multiplier: Decimal,
    config: LoyaltyConfig,
) -> Award:
    """The award for a paid ``order``; ``multiplier`` is the customer's tier multiplier."""
    rule = config.earning.rounding
    basis = earning_basis(order, config.earning)
    base = round_points(basis * config.earning.points_per_unit * multiplier, rule)
    bonuses: list[tuple[str, int]] = []
    for bonus in config.bonuses:
        if bonus.first_order and not first_order:
            continue
        if bonus.has_product_condition:
            matching = [i for i in items if _matches(bonus, i)]
            if not matching:
                continue
            amount = sum((i.unit_price * i.quantity for i in matching), Decimal("0"))
        else:
            amount = basis
        points = bonus.points + round_points(amount * bonus.points_per_unit, rule)
        if points:
            bonuses.append((bonus.name, points))
    return Award(points=base + sum(p for _, p in bonuses), base=base, bonuses=tuple(bonuses))


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by whole calendar months (negative goes back); the day is clamped,
    so 31 January + 1 month is the last day of February."""
    year, month0 = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    month = month0 + 1
    day = moment.day
    if day > 28:  # every month has 28 days: only later ones may need the month's length
        day = min(day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
