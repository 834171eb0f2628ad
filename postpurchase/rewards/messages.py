"""Messages about points and rewards, planned as customer-level touchpoints:

- ``reward.issued``: each redemption issued in the last two days (the subject carries the
  redemption, so each code is told once, whatever the channel or how often this runs);
- ``points.expiring``: customers whose points (``after_earned`` expiry) will expire within
  ``expiry.notice_days``, with how many and the first date (subject
  ``points_expiring:<customer>:<date>:<points>``, so a new amount or date is a new message).

Also here: the tier welcome gift (``welcome_reward`` of a tier level), reserved when a
``tier.changed`` event moves a customer up into that tier, then issued like any redemption.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.campaigns.decisions import Occurrence
from postpurchase.events import EventType
from postpurchase.exceptions import InvalidInput
from postpurchase.journey import POINTS_EXPIRING, REWARD_ISSUED
from postpurchase.loyalty.config import ExpiryMode, LoyaltyConfig
from postpurchase.messages.reward_subjects import expiring_subject, reward_subject
from postpurchase.processing.batch import Records, SourcedEvent
from postpurchase.processing.planning import PlanCounts, plan_touchpoints
from postpurchase.rewards.redemption import lock_customer, reserve
from postpurchase.store.models import (
    LedgerKind,
    LoyaltyLedgerEntry,
    Redemption,
    RedemptionStatus,
)

Ledger = LoyaltyLedgerEntry


def reward_occurrences(session: Session, *, now: datetime) -> list[Occurrence]:
    rows = session.execute(
        select(Redemption.id, Redemption.customer_id, Redemption.issued_at).where(
            Redemption.status == RedemptionStatus.ISSUED,
            Redemption.issued_at >= now - timedelta(days=2),
        )
    ).all()
    return [
        Occurrence(
            REWARD_ISSUED, issued_at or now, customer_id, None, reward_subject(redemption_id)
        )
        for redemption_id, customer_id, issued_at in rows
    ]


def expiring_points(
    session: Session, *, config: LoyaltyConfig, now: datetime
) -> list[tuple[int, datetime, int]]:
    """(customer, first expiry date, points) of the points that will expire within the
    notice period, by the same rule as ``loyalty.expiry`` (spent points count against the
    oldest first; never more than the balance)."""
    if config.expiry.mode is not ExpiryMode.AFTER_EARNED:
        return []
    horizon = now + timedelta(days=config.expiry.notice_days)
    order_net = (
        select(Ledger.order_id, func.sum(Ledger.points).label("net"))
        .where(
            Ledger.order_id.is_not(None), Ledger.kind.in_([LedgerKind.AWARD, LedgerKind.REVERSAL])
        )
        .group_by(Ledger.order_id)
        .subquery()
    )
    due = (
        select(
            Ledger.customer_id,
            func.sum(order_net.c.net).label("due"),
            func.min(case((Ledger.expires_at > now, Ledger.expires_at))).label("first"),
        )
        .join(order_net, order_net.c.order_id == Ledger.order_id)
        .where(Ledger.kind == LedgerKind.AWARD, Ledger.expires_at <= horizon)
        .group_by(Ledger.customer_id)
        .subquery()
    )
    used = case(
        (and_(Ledger.kind == LedgerKind.ADJUSTMENT, Ledger.points < 0), -Ledger.points),
        (
            Ledger.kind.in_(
                [LedgerKind.EXPIRY, LedgerKind.REDEMPTION, LedgerKind.REDEMPTION_REFUND]
            ),
            -Ledger.points,
        ),
        else_=0,
    )
    account = (
        select(
            Ledger.customer_id,
            func.sum(Ledger.points).label("balance"),
            func.sum(used).label("used"),
        )
        .group_by(Ledger.customer_id)
        .subquery()
    )
    rows = session.execute(
        select(due.c.customer_id, due.c.first, due.c.due - account.c.used, account.c.balance)
        .join(account, account.c.customer_id == due.c.customer_id)
        .where(due.c.first.is_not(None))
    ).all()
    found = []
    for customer_id, first, remaining, balance in rows:
        points = min(int(remaining or 0), int(balance or 0))
        if points > 0:
            # SQLite returns the MIN of a CASE as text: read it back as a time.
            when = first if isinstance(first, datetime) else datetime.fromisoformat(str(first))
            found.append((customer_id, when, points))
    return found


def plan_reward_messages(
    session: Session,
    campaigns: CampaignConfig,
    *,
    loyalty: LoyaltyConfig,
    now: datetime,
    shop_zone: ZoneInfo,
) -> PlanCounts:
    occurrences = reward_occurrences(session, now=now)
    occurrences += [
        Occurrence(
            POINTS_EXPIRING,
            now,
            customer_id,
            None,
            expiring_subject(customer_id, on.date(), points),
        )
        for customer_id, on, points in expiring_points(session, config=loyalty, now=now)
    ]
    return plan_touchpoints(session, occurrences, campaigns, shop_zone=shop_zone)


def reserve_tier_gifts(
    session: Session,
    records: Records,
    items: Sequence[SourcedEvent],
    config: LoyaltyConfig,
    *,
    platform: str,
    code_prefix: str,
) -> int:
    """Reserve the welcome reward of the tier a customer moved up into, once per customer and
    tier (key ``tier_gift:<customer>:<tier>``). Returns how many were reserved."""
    names = [level.name for level in config.tiers.levels]
    reserved = 0
    for item in items:
        event, customer = item.event, records.customer_for(item)
        if event.type is not EventType.TIER_CHANGED or event.tier is None or customer is None:
            continue
        level = config.tiers.level(event.tier.to_tier)
        before = names.index(config.tiers.level(event.tier.from_tier).name)
        if not level.welcome_reward or names.index(level.name) <= before:
            continue
        try:
            _, new = reserve(
                session,
                customer=lock_customer(session, customer.id),
                reward_name=level.welcome_reward,
                key=f"tier_gift:{customer.id}:{level.name}",
                config=config,
                platform=platform,
                now=event.occurred_at,
                code_prefix=code_prefix,
                gift=True,
            )
        except InvalidInput:
            continue  # e.g. the pool ran dry: the tier change itself must still go through
        reserved += int(new)
    return reserved
