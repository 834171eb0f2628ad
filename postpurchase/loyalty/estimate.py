"""Points an order (a snapshot, not yet in the ledger) would earn, by the ledger's own rules.

For ``campaigns timeline`` and ``preview --order``: the same currency rule and the same
arithmetic (``earning.award_for``) as the award the processing DAG writes, so what they show
is what the customer would get.
"""

from __future__ import annotations

from decimal import Decimal

from postpurchase.events import OrderSnapshot
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.earning import Award, award_for
from postpurchase.store.models import OrderItem


def estimated_award(
    order: OrderSnapshot,
    config: LoyaltyConfig,
    *,
    first_order: bool = True,
    multiplier: Decimal = Decimal("1"),
) -> Award | None:
    """The award for ``order`` once paid, or None when it earns nothing by rule: cancelled,
    or in another currency than the shop's (its amounts are not comparable)."""
    if order.cancelled_at is not None or order.currency != config.shop_currency:
        return None
    lines = [
        OrderItem(
            product_id=line.product_id,
            product_type=line.product_type,
            vendor=line.vendor,
            quantity=line.quantity,
            unit_price=line.unit_price,
        )
        for line in order.lines
    ]
    return award_for(order, lines, first_order=first_order, multiplier=multiplier, config=config)
