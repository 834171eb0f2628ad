"""Re-planning a campaign's pending touchpoints after its configuration changed.

Edits apply by themselves to events processed after them; ``replan_campaign`` brings the
touchpoints still ``planned`` in line: new due times, steps or channels added or removed, and
touchpoints the campaign would no longer plan cancelled with the reason. Touchpoints already
claimed, sent or finished are never touched.

Each touchpoint's start is recovered from what is stored: the order's timestamps, its first
refund (``order.refunded``), or the customer's tier history (``tier.changed``, whose subject
names the customer, the new tier and the day).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.campaigns.decisions import Occurrence, decide
from postpurchase.exceptions import InvalidInput
from postpurchase.journey import ANCHORS
from postpurchase.outcomes.assignment import TREATMENT, variant_campaign
from postpurchase.processing.planning import in_shop_zone, load_facts
from postpurchase.store.models import (
    CustomerTierChange,
    Order,
    OrderRefund,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.store.statements import insert_ignoring_conflicts

# (subject key, customer id, order id): the touchpoints of one occurrence
_Key = tuple[str, int, int | None]


@dataclass
class ReplanCounts:
    moved: int = 0
    cancelled: int = 0
    added: int = 0
    unchanged: int = 0


def replan_campaign(
    session: Session,
    config: CampaignConfig,
    campaign_id: str,
    *,
    shop_zone: ZoneInfo,
    customer_id: int | None = None,
) -> ReplanCounts:
    """Re-plan the ``planned`` touchpoints of ``campaign_id`` from the current ``config``
    (only ``customer_id``'s when given), each as the campaign applies to its shop (overrides,
    the shop's zone).

    Raises InvalidInput for an unknown campaign, or one whose trigger's moment is not stored.
    """
    counts = ReplanCounts()
    campaign = config.by_id(campaign_id)
    if campaign is not None and not campaign.enabled and _enabled_for_a_shop(config, campaign_id):
        campaign = campaign.model_copy(update={"enabled": True})  # shops decide below
    query = select(Touchpoint).where(
        Touchpoint.campaign_id == campaign_id, Touchpoint.status == TouchpointStatus.PLANNED
    )
    if customer_id is not None:
        query = query.where(Touchpoint.customer_id == customer_id)
    pending = session.scalars(query.order_by(Touchpoint.id)).all()
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
    groups: dict[_Key, list[Touchpoint]] = defaultdict(list)
    for row in pending:
        groups[(row.subject_key, row.customer_id, row.order_id)].append(row)
    occurrences = _occurrences(session, campaign.trigger, groups)
    facts = load_facts(session, occurrences.values(), shop_zone)
    additions = []
    for key, rows in groups.items():
        occurrence = occurrences.get(key)
        if occurrence is None:
            for row in rows:
                row.status, row.reason = TouchpointStatus.CANCELLED, "replanned: start unknown"
            counts.cancelled += len(rows)
            continue
        shop_campaign = config.for_shop(rows[0].shop).by_id(campaign_id)
        if shop_campaign is None or not shop_campaign.enabled:
            for row in rows:
                row.status, row.reason = TouchpointStatus.CANCELLED, "replanned: off in its shop"
            counts.cancelled += len(rows)
            continue
        # Pending rows are never held out; additions keep their siblings' arm and variant,
        # so a replan never moves a customer between arms (invariant 7).
        arm, variant = rows[0].arm or TREATMENT, rows[0].variant
        decision = decide(
            variant_campaign(shop_campaign, variant),
            occurrence,
            in_shop_zone(facts[(occurrence.customer_id, occurrence.order_id)], config, shop_zone),
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
                "shop": rows[0].shop,
                "order_id": occurrence.order_id,
                "due_at": due,
                "status": TouchpointStatus.PLANNED,
                "arm": arm,
                "variant": variant,
            }
            for (step, channel), due in wanted.items()
        ]
    session.flush()
    counts.added = insert_ignoring_conflicts(session, Touchpoint, additions)
    return counts


def _enabled_for_a_shop(config: CampaignConfig, campaign_id: str) -> bool:
    return any(
        (c := config.for_shop(shop).by_id(campaign_id)) is not None and c.enabled
        for shop in config.shops
    )


def _occurrences(session: Session, trigger: str, keys: Iterable[_Key]) -> dict[_Key, Occurrence]:
    """Each key's occurrence as stored; keys whose start is gone (order deleted) are left out."""
    if trigger == "tier.changed":
        return _tier_occurrences(session, keys)
    keys = [key for key in keys if key[2] is not None]
    order_ids = {order_id for _, _, order_id in keys}
    if trigger == "order.refunded":
        first_refund = (
            select(OrderRefund.order_id, func.min(OrderRefund.refunded_at))
            .where(OrderRefund.order_id.in_(order_ids))
            .group_by(OrderRefund.order_id)
        )
        anchors: dict[int | None, datetime | None] = {
            order_id: moment for order_id, moment in session.execute(first_refund)
        }
    elif (column := ANCHORS.get(trigger)) is not None:
        anchors = {
            order.id: getattr(order, column)
            for order in session.scalars(select(Order).where(Order.id.in_(order_ids)))
        }
    else:
        raise InvalidInput(
            f"a campaign starting from {trigger} cannot be re-planned: that moment is not stored"
        )
    return {
        key: Occurrence(trigger, anchor, key[1], key[2], key[0])
        for key in keys
        if (anchor := anchors.get(key[2])) is not None
    }


def _tier_occurrences(session: Session, keys: Iterable[_Key]) -> dict[_Key, Occurrence]:
    """Tier changes from the history: the latest change to the subject's tier on its day."""
    wanted: dict[tuple[int, str, date], _Key] = {}
    for key in keys:
        _, customer, rest = key[0].split(":", 2)
        tier, day = rest.rsplit(":", 1)
        wanted[(int(customer), tier, date.fromisoformat(day))] = key
    changes = session.scalars(
        select(CustomerTierChange)
        .where(CustomerTierChange.customer_id.in_({c for c, _, _ in wanted}))
        .order_by(CustomerTierChange.changed_at)
    )
    found: dict[_Key, Occurrence] = {}
    for change in changes:
        match = wanted.get((change.customer_id, change.to_tier, change.changed_at.date()))
        if match is not None:  # later changes the same day replace earlier ones
            moved = {"from_tier": change.from_tier, "to_tier": change.to_tier}
            found[match] = Occurrence(
                "tier.changed", change.changed_at, match[1], None, match[0], moved
            )
    return found
