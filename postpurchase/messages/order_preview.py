"""The template context for ``preview --order``: the order's own data, and what is assumed.

A real order file says who bought what, but not what the store would know by sending time
(the customer's balance and tier, whether a carrier confirmed delivery). Nothing is made up
silently: the customer is the order's (no name means the neutral greeting, as when sending),
the points are the loyalty rules' own computation for this order, and each fact the file
cannot give is assumed in the plainest way and listed, so the person previewing knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from postpurchase.campaigns.conditions import Condition, ConditionError
from postpurchase.campaigns.decisions import customer_context, item_context, order_context
from postpurchase.events import OrderSnapshot
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.estimate import estimated_award
from postpurchase.messages.context import LoyaltyFigures, ShopProfile, sample_context


@dataclass(frozen=True)
class OrderPreview:
    context: dict[str, Any]
    assumptions: list[str]
    not_sent: str | None = None  # why the campaign would plan nothing for this order


def order_preview_context(
    shop: ShopProfile,
    order: OrderSnapshot,
    loyalty: LoyaltyConfig,
    *,
    campaign_id: str,
    locale: str | None = None,
    delivery_confirmed: bool | None = None,
    mentions_delivery: bool = True,
    condition: Condition | None = None,
) -> OrderPreview:
    """Context for rendering ``campaign_id`` about ``order``, and the assumptions made.

    ``mentions_delivery``: the templates read ``order.delivery_confirmed`` (else no
    assumption about delivery is listed). ``condition``: the campaign's ``when``, evaluated
    as planning would, to say when the campaign would send nothing for this order.
    """
    assumed: list[str] = []
    customer = order.customer
    if customer is None:
        assumed.append("the order names no customer: no name (neutral greeting), no email")
    elif not customer.first_name:
        assumed.append("the customer has no first name: neutral greeting")

    level = loyalty.tiers.level(None)
    award = estimated_award(order, loyalty, first_order=True, multiplier=level.multiplier)
    earned = award.points if award is not None else 0
    if award is None:
        why = (
            "it is cancelled"
            if order.cancelled_at is not None
            else f"{order.currency} is not the shop's currency ({loyalty.shop_currency})"
        )
        assumed.append(f"points earned: 0, the order earns nothing ({why})")
    else:
        assumed.append(
            f"points earned: {earned} ({award.note}), as for a new customer's first order "
            f"at tier {level.name}"
        )
    assumed.append(f"balance {earned} points, no tier yet: a new customer")

    if delivery_confirmed is None:
        delivery_confirmed = False
    if delivery_confirmed is False and mentions_delivery:
        assumed.append(
            'delivery not confirmed by a carrier ("should have arrived"); '
            "--delivery confirmed shows the other wording"
        )
    if order.placed_at is None:
        assumed.append("no placed_at in the order: dates shown are a sample date")
    context = sample_context(
        shop,
        campaign_id=campaign_id,
        locale=locale,
        first_name=None,
        order=order.model_dump(mode="json"),
        delivery_confirmed=delivery_confirmed,
        loyalty=LoyaltyFigures(points_earned=earned, points_balance=earned, tier=None),
    )
    # The order's own customer, never the sample one.
    context["customer"].update(
        first_name=customer.first_name if customer else None,
        last_name=customer.last_name if customer else None,
        email=customer.email if customer else None,
    )
    if not (customer and customer.time_zone):
        context["time_zone"] = shop.default_time_zone
        assumed.append(f"time zone: the shop's ({shop.default_time_zone})")
    if not locale and not (customer and customer.locale):
        assumed.append(f"locale: the shop's default ({shop.default_locale})")
    return OrderPreview(context, assumed, _not_sent(order, earned, condition))


def _not_sent(order: OrderSnapshot, earned: int, condition: Condition | None) -> str | None:
    if condition is None:
        return None
    items = [item_context(line) for line in order.lines]
    facts = {
        "order": order_context(order, items, points_earned=earned),
        "customer": customer_context(order.customer) if order.customer else {},
        "items": items,
        "tier": None,
        "review": None,
    }
    try:
        if condition.matches(facts):
            return None
    except ConditionError as exc:
        return f"condition failed: {exc}"
    return f"condition not met: {condition.source}"
