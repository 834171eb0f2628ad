"""What an order would get: each campaign's touchpoints with local due times, or why not.

Used by ``postpurchase campaigns timeline``. It applies the planner's own rule (``decide``) to
an order snapshot, without a database; journey moments the snapshot cannot tell (payment,
fulfilment, delivery) are given by the caller, and an unknown delivery is assumed from the
fulfilment plus the configured fallback, as the processing DAG would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.campaigns.decisions import (
    Facts,
    Occurrence,
    customer_context,
    decide,
    item_context,
    order_context,
)
from postpurchase.campaigns.timing import zone_or
from postpurchase.events import OrderSnapshot
from postpurchase.journey import ANCHORS, CUSTOMER_LAPSED, in_paid_status


@dataclass(frozen=True)
class TimelineRow:
    campaign: str
    step: int | None
    channel: str | None
    due_at: datetime | None  # in the customer's zone
    note: str


def journey_moments(
    order: OrderSnapshot,
    config: CampaignConfig,
    *,
    paid_at: datetime | None,
    fulfilled_at: datetime | None,
    delivered_at: datetime | None,
    zone: ZoneInfo,
) -> tuple[dict[str, datetime | None], bool]:
    """Known or assumed journey timestamps, and whether delivery is assumed."""
    if paid_at is None and order.paid_at is not None:
        paid_at = order.paid_at
    if paid_at is None and in_paid_status(order.financial_status):
        paid_at = order.placed_at
    assumed = delivered_at is None and fulfilled_at is not None
    if assumed and fulfilled_at is not None:
        delivered_at = config.delivery_fallback.after(fulfilled_at, zone)
    moments = {
        "placed_at": order.placed_at,
        "paid_at": paid_at,
        "fulfilled_at": fulfilled_at,
        "delivered_at": delivered_at,
        "cancelled_at": order.cancelled_at,
    }
    return moments, assumed


def order_timeline(
    order: OrderSnapshot,
    config: CampaignConfig,
    *,
    shop_zone: ZoneInfo,
    paid_at: datetime | None = None,
    fulfilled_at: datetime | None = None,
    delivered_at: datetime | None = None,
    points_earned: int = 0,
    catalogue: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> list[TimelineRow]:
    """One row per planned step and channel, or per campaign that would plan nothing.

    ``points_earned``: what the order would earn (``loyalty.estimate``), for conditions.
    ``catalogue`` completes the order's lines from the product catalogue (type, tags,
    collections), as processing does; without it only what the lines say counts.
    """
    customer = order.customer
    zone = zone_or(customer.time_zone if customer else None, shop_zone)
    moments, assumed = journey_moments(
        order,
        config,
        paid_at=paid_at,
        fulfilled_at=fulfilled_at,
        delivered_at=delivered_at,
        zone=shop_zone,
    )
    items = [item_context(line) for line in order.lines]
    if catalogue is not None:
        items = catalogue(items)
    context = order_context(order, items, points_earned=points_earned) | moments
    facts = Facts(
        order=context,
        customer=customer_context(customer) if customer else {},
        items=items,
        zone=zone,
    )
    rows = []
    for campaign in config.campaigns:
        if not campaign.enabled:
            rows.append(TimelineRow(campaign.id, None, None, None, "skipped: campaign disabled"))
            continue
        column = ANCHORS.get(campaign.trigger)
        anchor = moments.get(column) if column else None
        if anchor is None:
            reason = (
                "starts from a tier change, not an order"
                if campaign.trigger == "tier.changed"
                else f"waits for {campaign.trigger}"
            )
            rows.append(TimelineRow(campaign.id, None, None, None, f"skipped: {reason}"))
            continue
        occurrence = Occurrence(campaign.trigger, anchor, 0, 0, "order:timeline")
        decision = decide(campaign, occurrence, facts)
        if decision.reason is not None:
            rows.append(TimelineRow(campaign.id, None, None, None, f"skipped: {decision.reason}"))
            continue
        note = ""
        if campaign.trigger == "order.delivered" and assumed:
            note = "delivery assumed after the fallback"
        elif campaign.trigger == CUSTOMER_LAPSED:
            note = "if no other order is placed before"
        rows.extend(
            TimelineRow(campaign.id, s.step, s.channel.value, s.due_at.astimezone(zone), note)
            for s in decision.steps
        )
    return rows
