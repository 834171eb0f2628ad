"""Planning what no event announces: assumed deliveries and lapsed customers.

Both run on every processing DAG run and are idempotent.

- Delivery fallback: an order fulfilled ``delivery_fallback`` ago that never reported delivery
  is treated as delivered then: its ``delivered_at`` is set to that assumed time (so each
  order is handled once) and ``order.delivered`` campaigns are planned from it. A real
  delivery reported later changes nothing already planned.
- Win-back: a customer whose last purchase was placed at least the campaign's ``delay`` ago,
  with no purchase since, triggers ``customer.lapsed`` campaigns, once per last purchase. A
  purchase is a paid order that was not cancelled: an abandoned, unpaid or cancelled order
  is no purchase (test orders never reach the store).

Only fallbacks and lapses that fell due within ``FOLLOWUP_HORIZON`` are looked at: it keeps
each run small, and orders imported from long ago are not sent stale messages. A pause of the
DAG longer than that skips what fell due meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.campaigns.decisions import Occurrence
from postpurchase.journey import CUSTOMER_LAPSED
from postpurchase.processing.planning import (
    PlanCounts,
    lapse_subject,
    order_subject,
    plan_touchpoints,
)
from postpurchase.store.models import Order, Touchpoint

FOLLOWUP_HORIZON = timedelta(days=7)


def plan_assumed_deliveries(
    session: Session, config: CampaignConfig, *, now: datetime, shop_zone: ZoneInfo
) -> tuple[int, PlanCounts]:
    """Mark orders overdue for a delivery report as delivered and plan their campaigns.

    Returns how many orders were assumed delivered, and the planning counts.
    """
    fallback = config.delivery_fallback
    elapsed = timedelta(days=fallback.days, seconds=fallback.seconds)
    overdue = session.scalars(
        select(Order)
        .where(
            Order.delivered_at.is_(None),
            Order.cancelled_at.is_(None),
            Order.fulfilled_at.is_not(None),
            Order.customer_id.is_not(None),
            # Coarse bounds in SQL (the fallback as elapsed time, give or take a DST hour);
            # the exact check is below.
            Order.fulfilled_at <= now - elapsed + timedelta(hours=2),
            Order.fulfilled_at > now - elapsed - FOLLOWUP_HORIZON - timedelta(hours=2),
        )
        .order_by(Order.id)
    ).all()
    occurrences = []
    for order in overdue:
        assert order.fulfilled_at is not None and order.customer_id is not None
        assumed = fallback.after(order.fulfilled_at, shop_zone)
        if assumed > now or assumed <= now - FOLLOWUP_HORIZON:
            continue
        order.delivered_at = assumed
        occurrences.append(
            Occurrence(
                "order.delivered", assumed, order.customer_id, order.id, order_subject(order.id)
            )
        )
    session.flush()
    return len(occurrences), plan_touchpoints(session, occurrences, config, shop_zone=shop_zone)


def plan_lapsed_customers(
    session: Session, config: CampaignConfig, *, now: datetime, shop_zone: ZoneInfo
) -> PlanCounts:
    """Trigger ``customer.lapsed`` campaigns for customers without an order since their delay."""
    total = PlanCounts()
    for campaign in config.enabled():
        if campaign.trigger != CUSTOMER_LAPSED:
            continue
        # Elapsed-time cutoff; the campaign's own delay then sets the exact due time.
        cutoff = now - timedelta(days=campaign.delay.days, seconds=campaign.delay.seconds)
        last = (
            select(Order.customer_id, func.max(Order.placed_at).label("last_at"))
            .where(
                Order.customer_id.is_not(None),
                Order.placed_at.is_not(None),
                Order.paid_at.is_not(None),
                Order.cancelled_at.is_(None),
            )
            .group_by(Order.customer_id)
            .subquery()
        )
        rows = session.execute(
            select(Order.customer_id, Order.id, Order.placed_at)
            .join(
                last,
                (last.c.customer_id == Order.customer_id) & (last.c.last_at == Order.placed_at),
            )
            .where(
                last.c.last_at <= cutoff,
                last.c.last_at > cutoff - FOLLOWUP_HORIZON,
                Order.paid_at.is_not(None),
                Order.cancelled_at.is_(None),
            )
            .order_by(Order.customer_id, Order.id)
        ).all()
        already = set(
            session.scalars(
                select(Touchpoint.subject_key).where(
                    Touchpoint.campaign_id == campaign.id,
                    Touchpoint.customer_id.in_({r.customer_id for r in rows}),
                )
            )
        )
        occurrences: dict[int, Occurrence] = {}
        for row in rows:
            customer_id, order_id, placed_at = int(row.customer_id), int(row.id), row.placed_at
            subject = lapse_subject(customer_id, order_id)
            if subject not in already and customer_id not in occurrences:
                occurrences[customer_id] = Occurrence(
                    CUSTOMER_LAPSED, placed_at, customer_id, order_id, subject
                )
        single = config.model_copy(update={"campaigns": [campaign]})
        counts = plan_touchpoints(session, list(occurrences.values()), single, shop_zone=shop_zone)
        total.planned += counts.planned
        total.skipped.update(counts.skipped)
    return total
