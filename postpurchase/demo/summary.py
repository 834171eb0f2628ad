"""What a run of the engine did, in numbers a newcomer or ops can read at a glance."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.store.models import (
    ClaimStatus,
    CustomerTier,
    InboxEvent,
    LedgerKind,
    LoyaltyLedgerEntry,
    Touchpoint,
    TouchpointStatus,
)


def work_left(session: Session, now: datetime) -> tuple[int, int]:
    """(inbox rows not yet processed, touchpoints due now whose dispatch has not finished)."""
    inbox = session.scalar(
        select(func.count())
        .select_from(InboxEvent)
        .where(InboxEvent.status.in_([ClaimStatus.PENDING, ClaimStatus.CLAIMED]))
    )
    due = session.scalar(
        select(func.count())
        .select_from(Touchpoint)
        .where(
            Touchpoint.status.in_(
                [TouchpointStatus.PLANNED, TouchpointStatus.CLAIMED, TouchpointStatus.SENDING]
            ),
            Touchpoint.due_at <= now,
        )
    )
    return int(inbox or 0), int(due or 0)


def tiers_assigned(session: Session) -> int:
    """How many customers have a loyalty tier (zero until the first segment refresh)."""
    return int(session.scalar(select(func.count()).select_from(CustomerTier)) or 0)


def summary_lines(session: Session) -> list[str]:
    """The run summary: events, touchpoints per campaign and outcome, skips, points, tiers."""
    lines = []
    events = session.execute(
        select(InboxEvent.event_type, InboxEvent.status, func.count())
        .group_by(InboxEvent.event_type, InboxEvent.status)
        .order_by(InboxEvent.event_type)
    ).all()
    total = sum(n for *_, n in events)
    lines.append(f"events received: {total}")
    for event_type, status, count in events:
        lines.append(f"  {event_type:<28} {status.value:<8} {count:>6}")

    by_campaign: dict[str, dict[str, int]] = defaultdict(dict)
    for campaign, channel, outcome, count in session.execute(
        select(Touchpoint.campaign_id, Touchpoint.channel, Touchpoint.status, func.count())
        .group_by(Touchpoint.campaign_id, Touchpoint.channel, Touchpoint.status)
        .order_by(Touchpoint.campaign_id, Touchpoint.channel)
    ):
        by_campaign[f"{campaign} ({channel.value})"][outcome.value] = count
    lines.append(f"touchpoints planned: {sum(sum(v.values()) for v in by_campaign.values())}")
    for name, statuses in by_campaign.items():
        detail = ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
        lines.append(f"  {name:<28} {detail}")

    skips = session.execute(
        select(Touchpoint.reason, func.count())
        .where(Touchpoint.status.in_([TouchpointStatus.SKIPPED, TouchpointStatus.CANCELLED]))
        .group_by(Touchpoint.reason)
        .order_by(func.count().desc())
    ).all()
    if skips:
        lines.append("skipped or cancelled, by reason:")
        width = max(len(reason or "unspecified") for reason, _ in skips)
        lines.extend(f"  {reason or 'unspecified':<{width}} {n:>6}" for reason, n in skips)

    awarded = session.scalar(
        select(func.coalesce(func.sum(LoyaltyLedgerEntry.points), 0)).where(
            LoyaltyLedgerEntry.kind == LedgerKind.AWARD
        )
    )
    balance = session.scalar(select(func.coalesce(func.sum(LoyaltyLedgerEntry.points), 0)))
    lines.append(f"loyalty points awarded: {awarded} (outstanding balance {balance})")

    tiers = session.execute(
        select(CustomerTier.tier, func.count())
        .group_by(CustomerTier.tier)
        .order_by(CustomerTier.tier)
    ).all()
    if tiers:
        lines.append("customers per tier: " + ", ".join(f"{t} {n}" for t, n in tiers))
    return lines


def outcome_lines(session: Session, *, now: datetime) -> list[str]:
    """The outcome report's funnel per campaign and uplift lines (the run's last lines).

    ``now`` is when outcomes are measured: the demo passes a week after the run, with
    simulated provider events and orders (demo/outcomes.py), and says so.
    """
    from postpurchase.outcomes.report import build_report, funnel_lines

    return funnel_lines(build_report(session, now=now))
