"""What the campaigns pages show: each campaign's state and timing in words, its last 7 and 30
days from the outcomes report, and for one campaign its messages in every locale and its
recent touchpoints.

State: ``invalid`` (with the file:line problems ``campaigns validate`` prints), ``paused``
(by the deliverability guard or ops, with the reason), ``disabled`` or ``enabled``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import Campaign, CampaignConfig, load_campaigns
from postpurchase.campaigns.validation import campaign_problems
from postpurchase.campaigns.wording import CampaignDescription, describe_campaign
from postpurchase.exceptions import ConfigError
from postpurchase.messages.context import ShopProfile, sample_context
from postpurchase.messages.rendering import RenderedEmail, renderer_for
from postpurchase.messages.tokens import signing_key
from postpurchase.outcomes.guard import paused_campaigns
from postpurchase.outcomes.report import build_report
from postpurchase.settings import Settings
from postpurchase.store.models import Touchpoint


@dataclass(frozen=True)
class CampaignsFile:
    config: CampaignConfig | None  # None when the file's structure is broken
    problems: list[str]  # every problem as file:line: message


def read_campaigns(settings: Settings) -> CampaignsFile:
    problems = campaign_problems(settings.campaigns_file, settings.templates_dir)
    try:
        config = load_campaigns(settings.campaigns_file)
    except ConfigError:
        return CampaignsFile(None, problems)
    return CampaignsFile(config, problems)


def _problems_of(campaign: Campaign, index: int, problems: list[str]) -> list[str]:
    """The problems that name the campaign (by id, or by its place in the list)."""
    marks = (f"campaigns[{index}]", f"campaigns.{index}", f"'{campaign.id}'", f" {campaign.id}:")
    return [p for p in problems if any(mark in p for mark in marks) or campaign.id in p.split()]


def _period(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per campaign, the treatment arm's funnel summed over its variants."""
    summed: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        total = summed[row["id"]]
        total["held_out"] += row["held_out"]
        if row["arm"] != "treatment":
            continue
        for key in ("planned", "sent", "delivered", "opened", "clicked", "converted"):
            total[key] += row[key]
        total["revenue"] += float(row["revenue"])
    return {k: dict(v) for k, v in summed.items()}


def campaigns_overview(session: Session, settings: Settings, *, now: datetime) -> dict[str, Any]:
    """Every campaign with its state, timing, and 7- and 30-day results."""
    found = read_campaigns(settings)
    paused = paused_campaigns(session)
    week = build_report(session, since=now - timedelta(days=7), now=now)
    month = build_report(session, since=now - timedelta(days=30), now=now)
    last_7, last_30 = _period(week["campaigns"]), _period(month["campaigns"])
    uplift = {row["campaign"]: row for row in month["uplift"]}
    campaigns = []
    for index, campaign in enumerate(found.config.campaigns if found.config else []):
        problems = _problems_of(campaign, index, found.problems)
        pause = paused.get(campaign.id)
        state = (
            "invalid"
            if problems
            else "paused"
            if pause
            else "enabled"
            if campaign.enabled
            else "disabled"
        )
        campaigns.append(
            {
                "about": describe_campaign(campaign, settings.templates_dir),
                "state": state,
                "problems": problems,
                "paused_reason": pause.reason if pause else None,
                "last_7": last_7.get(campaign.id, {}),
                "last_30": last_30.get(campaign.id, {}),
                "uplift": uplift.get(campaign.id),
                "variants": [v for v in month["variants"] if v["campaign"] == campaign.id],
            }
        )
    return {
        "campaigns": campaigns,
        "problems": found.problems,
        "broken": found.config is None,
        "currency": month["currency"],
        "refreshed_at": month["refreshed_at"],
        "file": str(settings.campaigns_file),
    }


@dataclass(frozen=True)
class Preview:
    locale: str
    channel: str
    subject: str | None
    html: str | None  # the email as the recipient sees it (shown in a sandboxed iframe)
    text: str
    segments: int | None
    encoding: str | None
    problem: str | None = None


def previews(settings: Settings, campaign: Campaign, about: CampaignDescription) -> list[Preview]:
    """The campaign's email and SMS in every locale it has texts for, with the sample order."""
    renderer = renderer_for(settings)
    shop = ShopProfile.from_settings(settings, signing_key(settings))
    shown = []
    for locale in about.locales:
        context = sample_context(
            shop, campaign_id=campaign.id, locale=None if locale == "default" else locale
        )
        for channel in ("email", "sms"):
            if channel not in campaign.channels or not renderer.has_template(
                channel, campaign.template
            ):
                continue
            try:
                rendered = renderer.render(
                    channel, campaign.template, context, marketing=campaign.consent == "marketing"
                )
            except Exception as exc:  # noqa: BLE001 - one broken locale must not hide the rest
                shown.append(Preview(locale, channel, None, None, "", None, None, str(exc)))
                continue
            if isinstance(rendered, RenderedEmail):
                shown.append(
                    Preview(
                        locale, channel, rendered.subject, rendered.html, rendered.text, None, None
                    )
                )
            else:
                shown.append(
                    Preview(
                        locale,
                        channel,
                        None,
                        None,
                        rendered.body,
                        rendered.segments.segments,
                        rendered.segments.encoding,
                    )
                )
    return shown


def recent_touchpoints(
    session: Session, campaign_id: str, *, limit: int = 50
) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            Touchpoint.id,
            Touchpoint.customer_id,
            Touchpoint.channel,
            Touchpoint.step,
            Touchpoint.status,
            Touchpoint.reason,
            Touchpoint.due_at,
            Touchpoint.arm,
            Touchpoint.variant,
        )
        .where(Touchpoint.campaign_id == campaign_id)
        .order_by(Touchpoint.id.desc())
        .limit(limit)
    ).all()
    return [row._asdict() for row in rows]


def skip_reasons(session: Session, campaign_id: str) -> list[tuple[str, int]]:
    return [
        (str(reason), int(n))
        for reason, n in session.execute(
            select(Touchpoint.reason, func.count())
            .where(Touchpoint.campaign_id == campaign_id, Touchpoint.status == "skipped")
            .group_by(Touchpoint.reason)
            .order_by(func.count().desc())
            .limit(10)
        )
    ]
