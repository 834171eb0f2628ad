"""What a run of the engine did, in numbers a newcomer or ops can read at a glance."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.demo.campaign_reach import why_nothing_planned
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


_UTC = ZoneInfo("UTC")
# Events the engine makes itself (the segment refresh's tier changes) go through the inbox
# like a platform's, but were not received from anyone.
INTERNAL_EVENT_TYPES = frozenset({"tier.changed"})
# Touchpoint statuses as the summary groups them: done with, or still to go.
_COLUMNS = (
    ("sent", (TouchpointStatus.SENT,)),
    ("skipped", (TouchpointStatus.SKIPPED,)),
    ("cancelled", (TouchpointStatus.CANCELLED,)),
    ("failed", (TouchpointStatus.FAILED,)),
    ("unknown", (TouchpointStatus.UNKNOWN,)),
    (
        "still planned",
        (TouchpointStatus.PLANNED, TouchpointStatus.CLAIMED, TouchpointStatus.SENDING),
    ),
)


def summary_lines(
    session: Session,
    *,
    config: CampaignConfig | None = None,
    now: datetime | None = None,
    shop_zone: ZoneInfo = _UTC,
) -> list[str]:
    """The run summary: events (from the platform, and internal), touchpoints per campaign by
    outcome (with ``config``: also each campaign that planned nothing, and why), skips,
    points, tiers."""
    lines = _event_lines(session)

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for campaign, channel, status, n in session.execute(
        select(Touchpoint.campaign_id, Touchpoint.channel, Touchpoint.status, func.count())
        .group_by(Touchpoint.campaign_id, Touchpoint.channel, Touchpoint.status)
        .order_by(Touchpoint.campaign_id, Touchpoint.channel)
    ):
        column = next(name for name, statuses in _COLUMNS if status in statuses)
        counts[f"{campaign} ({channel.value})"][column] += n
    totals: Counter[str] = sum(counts.values(), Counter())
    shown = [name for name, _ in _COLUMNS if totals[name] or name in ("sent", "skipped")]
    lines.append(
        "touchpoints: "
        + ", ".join(f"{name} {totals[name]}" for name in shown)
        + " (skipped: not sent, with a reason; still planned: due later)"
    )
    lines.append(
        f"  {'campaign (channel)':<28}" + "".join(f"{name:>{len(name) + 3}}" for name in shown)
    )
    for name, row in counts.items():
        lines.append(
            f"  {name:<28}" + "".join(f"{row[column]:>{len(column) + 3}}" for column in shown)
        )
    if config is not None:
        why = why_nothing_planned(
            session, config, now=now or datetime.now(UTC), shop_zone=shop_zone
        )
        lines += [f"  {campaign:<28} 0 — {reason}" for campaign, reason in why.items()]

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


def _event_lines(session: Session) -> list[str]:
    rows = session.execute(
        select(InboxEvent.event_type, InboxEvent.status, func.count())
        .group_by(InboxEvent.event_type, InboxEvent.status)
        .order_by(InboxEvent.event_type, InboxEvent.status)
    ).all()
    received = [r for r in rows if r[0] not in INTERNAL_EVENT_TYPES]
    internal = [r for r in rows if r[0] in INTERNAL_EVENT_TYPES]
    lines = [f"events received from the platform: {sum(n for *_, n in received)}"]
    lines += [f"  {kind:<28} {status.value:<8} {n:>6}" for kind, status, n in received]
    if internal:
        lines.append(
            f"internal events (tier changes of the segment refresh): {sum(n for *_, n in internal)}"
        )
        lines += [f"  {kind:<28} {status.value:<8} {n:>6}" for kind, status, n in internal]
    return lines


def outcome_lines(session: Session, *, now: datetime) -> list[str]:
    """The outcome report's funnel per campaign and uplift lines (the run's last lines).

    ``now`` is when outcomes are measured: the demo passes a week after the run, with
    simulated provider events and orders (demo/outcomes.py), and says so.
    """
    from postpurchase.outcomes.report import build_report, funnel_lines

    return funnel_lines(build_report(session, now=now))
