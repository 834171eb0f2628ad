"""Re-planning a campaign's pending touchpoints after its configuration changed.

Edits apply by themselves to events processed after them; ``replan_campaign`` brings the
touchpoints still ``planned`` in line: new due times, steps or channels added or removed, and
touchpoints the campaign would no longer plan cancelled with the reason. Touchpoints already
claimed, sent or finished are never touched.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CUSTOMER_LAPSED, CampaignConfig
from postpurchase.exceptions import InvalidInput
from postpurchase.processing.planning import Occurrence, decide, load_facts
from postpurchase.processing.statements import insert_ignoring_conflicts
from postpurchase.store.models import Order, Touchpoint, TouchpointStatus

# The order timestamp each trigger is anchored at (win-back: the last order's placement).
_ANCHOR = {
    "order.placed": "placed_at",
    "order.paid": "paid_at",
    "order.fulfilled": "fulfilled_at",
    "order.delivered": "delivered_at",
    "order.cancelled": "cancelled_at",
    "return.requested": "returned_at",
    "review.submitted": "reviewed_at",
    CUSTOMER_LAPSED: "placed_at",
}


@dataclass
class ReplanCounts:
    moved: int = 0
    cancelled: int = 0
    added: int = 0
    unchanged: int = 0


def replan_campaign(
    session: Session, config: CampaignConfig, campaign_id: str, *, shop_zone: ZoneInfo
) -> ReplanCounts:
    """Re-plan the ``planned`` touchpoints of ``campaign_id`` from the current ``config``.

    Raises InvalidInput for an unknown campaign, or one whose start cannot be recovered from
    the stored order (``tier.changed``, ``order.refunded``).
    """
    counts = ReplanCounts()
    campaign = config.by_id(campaign_id)
    pending = session.scalars(
        select(Touchpoint)
        .where(Touchpoint.campaign_id == campaign_id, Touchpoint.status == TouchpointStatus.PLANNED)
        .order_by(Touchpoint.id)
    ).all()
    if campaign is None or not campaign.enabled:
        if campaign is None and not pending:
            known = ", ".join(c.id for c in config.campaigns)
            raise InvalidInput(f"no campaign {campaign_id!r} in the configuration ({known})")
        for row in pending:
            row.status, row.reason = (
                TouchpointStatus.CANCELLED,
                "replanned: campaign disabled or removed",
            )
        counts.cancelled = len(pending)
        return counts
    column = _ANCHOR.get(campaign.trigger)
    if column is None:
        raise InvalidInput(
            f"campaign {campaign_id} starts from {campaign.trigger}, whose moment is not stored "
            "with the order: its planned touchpoints cannot be re-planned"
        )
    groups: dict[tuple[str, int, int | None], list[Touchpoint]] = defaultdict(list)
    for row in pending:
        groups[(row.subject_key, row.customer_id, row.order_id)].append(row)
    order_ids = {order_id for _, _, order_id in groups if order_id is not None}
    anchors: dict[int, datetime | None] = {
        order.id: getattr(order, column)
        for order in session.scalars(select(Order).where(Order.id.in_(order_ids)))
    }
    occurrences = {
        key: Occurrence(campaign.trigger, anchor, key[1], key[2], key[0])
        for key in groups
        if key[2] is not None and (anchor := anchors.get(key[2])) is not None
    }
    facts = load_facts(session, occurrences.values(), shop_zone)
    additions = []
    for key, rows in groups.items():
        occurrence = occurrences.get(key)
        if occurrence is None:
            for row in rows:
                row.status, row.reason = TouchpointStatus.CANCELLED, "replanned: start unknown"
            counts.cancelled += len(rows)
            continue
        decision = decide(
            campaign, occurrence, facts[(occurrence.customer_id, occurrence.order_id)]
        )
        wanted = {(s.step, s.channel): s.due_at for s in decision.steps}
        for row in rows:
            due = wanted.pop((row.step, row.channel), None)
            if due is None:
                row.status = TouchpointStatus.CANCELLED
                row.reason = (
                    f"replanned: {decision.reason or 'step or channel no longer in the campaign'}"
                )
                counts.cancelled += 1
            elif due != row.due_at:
                row.due_at = due
                counts.moved += 1
            else:
                counts.unchanged += 1
        additions += [
            {
                "subject_key": occurrence.subject_key,
                "campaign_id": campaign.id,
                "step": step,
                "channel": channel,
                "customer_id": occurrence.customer_id,
                "order_id": occurrence.order_id,
                "due_at": due,
                "status": TouchpointStatus.PLANNED,
            }
            for (step, channel), due in wanted.items()
        ]
    session.flush()
    counts.added = insert_ignoring_conflicts(session, Touchpoint, additions)
    return counts
