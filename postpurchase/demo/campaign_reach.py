"""Why a campaign planned nothing, for the run summary: said in the shop's terms.

A campaign with no touchpoint at all looks broken ("is setup_tips even on?"). The planner's
reasons are not stored (only counted in run notes), so they are worked out again here from
what the store holds, with the planner's own rule (``campaigns.decisions.decide``) for order
campaigns: each order that reached the campaign's trigger is checked, and the most common reason is
given. Read-only; a few queries over the shop's orders, fine for the embedded demo's size.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.campaigns.conditions import ConditionError
from postpurchase.campaigns.config import Campaign, CampaignConfig
from postpurchase.campaigns.decisions import Occurrence, decide
from postpurchase.journey import CUSTOMER_LAPSED
from postpurchase.processing.planning import load_facts, order_subject
from postpurchase.store.models import CustomerTierChange, Order, Touchpoint

# The order timestamp each order trigger starts from, and how to say an order reached it.
_ORDER_TRIGGERS = {
    "order.placed": ("placed_at", "placed"),
    "order.paid": ("paid_at", "paid"),
    "order.fulfilled": ("fulfilled_at", "fulfilled"),
    "order.delivered": ("delivered_at", "delivered"),
    "order.cancelled": ("cancelled_at", "cancelled"),
    "return.requested": ("returned_at", "with a return requested"),
    "review.submitted": ("reviewed_at", "reviewed"),
}
_MOST_ORDERS = 5000  # orders checked per campaign: enough to name the reason


def why_nothing_planned(
    session: Session, config: CampaignConfig, *, now: datetime, shop_zone: ZoneInfo
) -> dict[str, str]:
    """For each configured campaign without any touchpoint, why (one short phrase)."""
    with_touchpoints = set(session.scalars(select(Touchpoint.campaign_id).distinct()))
    reasons = {}
    for campaign in config.campaigns:
        if campaign.id in with_touchpoints:
            continue
        if not campaign.enabled:
            reasons[campaign.id] = "the campaign is disabled"
        elif campaign.trigger == CUSTOMER_LAPSED:
            reasons[campaign.id] = _lapse_reason(session, campaign, now)
        elif campaign.trigger == "tier.changed":
            reasons[campaign.id] = _tier_reason(session, campaign)
        elif campaign.trigger in _ORDER_TRIGGERS:
            reasons[campaign.id] = _order_reason(session, campaign, shop_zone)
        else:
            reasons[campaign.id] = f"no {campaign.trigger} event yet"
    return reasons


def _order_reason(session: Session, campaign: Campaign, shop_zone: ZoneInfo) -> str:
    column, reached = _ORDER_TRIGGERS[campaign.trigger]
    moment = getattr(Order, column)
    rows = session.execute(
        select(Order.id, Order.customer_id, moment)
        .where(moment.is_not(None), Order.customer_id.is_not(None))
        .order_by(Order.id)
        .limit(_MOST_ORDERS)
    ).all()
    if not rows:
        return f"no order {reached} yet"
    occurrences = [
        Occurrence(campaign.trigger, at, customer_id, order_id, order_subject(order_id))
        for order_id, customer_id, at in rows
    ]
    facts = load_facts(session, occurrences, shop_zone)
    why: Counter[str] = Counter()
    for occurrence in occurrences:
        decision = decide(
            campaign, occurrence, facts[(occurrence.customer_id, occurrence.order_id)]
        )
        why[decision.reason or "would be planned now (added after their trigger? replan it)"] += 1
    (top, count), *others = why.most_common()
    rest = "; ".join(f"{reason} ({n})" for reason, n in others[:2])
    if top.startswith("condition not met: ") and campaign.when is not None:
        matched = f"no {reached} order matched `when: {campaign.when.source}`"
        return f"{matched} ({count} of {len(rows)}; the others: {rest})" if others else matched
    return f"{len(rows)} order(s) {reached}, none planned: {top} ({count})" + (
        f"; {rest}" if others else ""
    )


def _lapse_reason(session: Session, campaign: Campaign, now: datetime) -> str:
    days = campaign.delay.days + int(campaign.delay.seconds // 86400)
    last = (
        select(func.max(Order.placed_at).label("last_at"))
        .where(Order.customer_id.is_not(None), Order.placed_at.is_not(None))
        .group_by(Order.customer_id)
        .subquery()
    )
    oldest = session.scalar(select(func.min(last.c.last_at)))
    if oldest is None:
        return "no customer has ordered yet"
    idle_days = (now - oldest).days
    if idle_days < days:
        return f"no customer inactive for {days} days yet (the longest: {idle_days} days)"
    # The follow-up planner looks back 7 days only: older lapses are not sent weeks late.
    return f"the customers inactive for {days} days fell due too long ago to be sent"


def _tier_reason(session: Session, campaign: Campaign) -> str:
    changes = session.execute(
        select(CustomerTierChange.from_tier, CustomerTierChange.to_tier, func.count()).group_by(
            CustomerTierChange.from_tier, CustomerTierChange.to_tier
        )
    ).all()
    if not changes:
        return "no tier change yet"
    if campaign.when is None:
        return f"{sum(n for *_, n in changes)} tier change(s), none planned"
    for from_tier, to_tier, _ in changes:
        try:
            tier = {"from_tier": from_tier, "to_tier": to_tier}
            if campaign.when.matches({"order": None, "customer": {}, "items": [], "tier": tier}):
                return "tier changes matched, but none planned (no address, or added since)"
        except ConditionError:
            continue
    moves = ", ".join(sorted({str(to) for _, to, _ in changes}))
    return f"no tier change matched `when: {campaign.when.source}` (customers moved to {moves})"
