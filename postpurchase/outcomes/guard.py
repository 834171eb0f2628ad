"""Deliverability guard: pause a campaign whose recent sends draw complaints or bounces.

Gmail and Yahoo require bulk senders to keep spam complaints under 0.3%; a bounce rate over a
few percent says the addresses are stale. A campaign past either limit over its recent sends
(``outcomes.guard`` in campaigns.yaml: rates, the period, and a minimum number of sends below
which one complaint is noise) is paused: a ``campaign_pauses`` row that the dispatch claim
reads, so its touchpoints simply wait, planned, and nothing is dropped. ``postpurchase
campaigns resume ID`` sets ``resumed_at``; from then on only sends after the resume count, so
the same old complaints do not pause it again at the next refresh. (Touchpoints that waited
past their campaign's ``expires_after`` are still skipped as expired when they are claimed.)

The guard reads ``touchpoint_outcomes``, so it runs right after the refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.exceptions import InvalidInput
from postpurchase.store.models import CampaignPause, TouchpointOutcome


@dataclass(frozen=True)
class Pause:
    campaign_id: str
    reason: str


def paused_campaigns(session: Session) -> dict[str, CampaignPause]:
    """Campaigns paused now, by id."""
    rows = session.scalars(select(CampaignPause).where(CampaignPause.resumed_at.is_(None)))
    return {row.campaign_id: row for row in rows}


def pause_campaign(session: Session, campaign_id: str, *, reason: str, now: datetime) -> None:
    row = session.get(CampaignPause, campaign_id)
    if row is None:
        session.add(CampaignPause(campaign_id=campaign_id, reason=reason, paused_at=now))
    else:
        row.reason, row.paused_at, row.resumed_at = reason, now, None
    session.flush()


def resume_campaign(session: Session, campaign_id: str, *, now: datetime) -> CampaignPause:
    """Resume a paused campaign; InvalidInput when it is not paused."""
    row = session.get(CampaignPause, campaign_id)
    if row is None or row.resumed_at is not None:
        raise InvalidInput(f"campaign {campaign_id!r} is not paused")
    row.resumed_at = now
    session.flush()
    return row


def _percent(rate: Decimal) -> str:
    return f"{rate * 100:.2f}".rstrip("0").rstrip(".") + "%"


def check_deliverability(session: Session, config: CampaignConfig, *, now: datetime) -> list[Pause]:
    """Pause every campaign over a limit; returns the pauses made by this call."""
    guard = config.outcomes.guard
    since = now - timedelta(days=guard.over.days, seconds=guard.over.seconds)
    x, p = TouchpointOutcome, CampaignPause
    rows = session.execute(
        select(
            x.campaign_id,
            func.count(),
            func.sum(case((x.complained, 1), else_=0)),
            func.sum(case((x.bounced, 1), else_=0)),
        )
        .outerjoin(p, p.campaign_id == x.campaign_id)
        .where(
            x.sent,
            x.moment >= since,
            # not paused now, and only sends since the last resume
            or_(p.campaign_id.is_(None), p.resumed_at.is_not(None)),
            or_(p.resumed_at.is_(None), x.moment > p.resumed_at),
        )
        .group_by(x.campaign_id)
    ).all()
    pauses = []
    for campaign_id, sends, complaints, bounces in rows:
        if sends < guard.min_sends:
            continue
        complaint_rate = Decimal(int(complaints)) / sends
        bounce_rate = Decimal(int(bounces)) / sends
        reasons = []
        if complaint_rate > guard.complaint_rate:
            reasons.append(
                f"spam complaints {_percent(complaint_rate)} of {sends} recent sends "
                f"(limit {_percent(guard.complaint_rate)})"
            )
        if bounce_rate > guard.bounce_rate:
            reasons.append(
                f"bounces {_percent(bounce_rate)} of {sends} recent sends "
                f"(limit {_percent(guard.bounce_rate)})"
            )
        if reasons:
            reason = "; ".join(reasons)
            pause_campaign(session, campaign_id, reason=reason, now=now)
            pauses.append(Pause(campaign_id, reason))
    return pauses
