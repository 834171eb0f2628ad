"""What the campaigns pages show: each campaign's state and timing in words, its last 7 and 30
days from the outcomes report, and for one campaign its messages in every locale and its
recent touchpoints. The campaign and outcomes packages say each of these; this module gathers
them, reading what the hourly outcomes run keeps rather than scanning orders on each view.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import Campaign, CampaignConfig, load_campaigns
from postpurchase.campaigns.states import CampaignStates, campaign_states
from postpurchase.campaigns.wording import describe_campaign
from postpurchase.dispatch.previews import MessagePreview, preview_campaign
from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.messages.context import ShopProfile
from postpurchase.messages.rendering import renderer_for
from postpurchase.messages.tokens import signing_key
from postpurchase.outcomes.refresh import shop_currency
from postpurchase.outcomes.report import campaign_rows, uplift_rows, variant_rows
from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import ShopSettings, default_shop
from postpurchase.store.models import (
    CampaignPause,
    Order,
    OutcomeSnapshot,
    Touchpoint,
    TouchpointStatus,
)

_COUNTED = ("planned", "held_out", "sent", "delivered", "opened", "clicked", "converted")


def _period(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per campaign, the treatment arm's funnel summed over its variants (and how many were
    held out); revenue stays Decimal."""
    summed: dict[str, dict[str, Any]] = {}
    for row in rows:
        total = summed.setdefault(row["id"], {**dict.fromkeys(_COUNTED, 0), "revenue": Decimal(0)})
        total["held_out"] += row["held_out"]
        if row["arm"] != "treatment":
            continue
        for key in _COUNTED[:1] + _COUNTED[2:]:
            total[key] += row[key]
        total["revenue"] += Decimal(row["revenue"])
    return summed


# The full check of the campaigns file renders every template against sample data: about a
# second. The file, the templates and the pauses rarely change between two page views, so the
# result is kept while all three stay the same (the key says exactly that).
_CHECKED: dict[tuple[Any, ...], tuple[CampaignStates, CampaignConfig | None]] = {}


def _signature(path: Path) -> tuple[Any, ...]:
    try:
        found = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), found.st_mtime_ns, found.st_size)


def checked_campaigns(
    session: Session, settings: Settings
) -> tuple[CampaignStates, CampaignConfig | None]:
    """The campaigns file's states (``campaigns.states``) and its campaigns (None when its
    structure is broken), recomputed only when the file, a template or a pause changed."""
    templates = settings.templates_dir
    key = (
        _signature(settings.campaigns_file),
        str(templates),
        tuple(sorted(_signature(p) for p in templates.rglob("*") if p.is_file())),
        tuple(
            session.execute(
                select(CampaignPause.campaign_id, CampaignPause.paused_at)
                .where(CampaignPause.resumed_at.is_(None))
                .order_by(CampaignPause.campaign_id)
            ).all()
        ),
    )
    if key not in _CHECKED:
        states = campaign_states(settings.campaigns_file, templates, session=session)
        try:
            config: CampaignConfig | None = load_campaigns(settings.campaigns_file)
        except ConfigError:
            config = None  # its structure is broken: the states carry the file:line problems
        _CHECKED.clear()  # only the newest version is ever asked for again
        _CHECKED[key] = (states, config)
    return _CHECKED[key]


def _state_for_shop(state: str, campaign: Campaign | None) -> str:
    """A valid campaign's state as a shop's overrides make it (``shops:`` in the file)."""
    if campaign is None or state not in ("enabled", "disabled"):
        return state
    return "enabled" if campaign.enabled else "disabled"


def campaigns_overview(
    session: Session, settings: Settings, *, now: datetime, shop: ShopSettings | None = None
) -> dict[str, Any]:
    """Every campaign with its state (``campaigns.states``), timing and description in words
    (``campaigns.wording``), and 7- and 30-day results (``outcomes.report``): of every shop,
    or as ``shop``'s overrides make them and of its messages alone, in its currency."""
    states, config = checked_campaigns(session, settings)
    key = shop.key if shop is not None else None
    shown = config.for_shop(key) if config is not None and key is not None else config
    # the outcomes report's parts (``outcomes.report``), each period read once
    week = campaign_rows(session, since=now - timedelta(days=7), campaign=None, shop=key)
    last_7 = _period(week)
    month = campaign_rows(session, since=now - timedelta(days=30), campaign=None, shop=key)
    last_30 = _period(month)
    uplift = {row["campaign"]: row for row in uplift_rows(month)}
    variants = variant_rows(month)
    kpis = session.get(OutcomeSnapshot, "kpis")
    campaigns = []
    for state in states.campaigns:
        campaign = shown.by_id(state.campaign_id) if shown else None
        campaigns.append(
            {
                "id": state.campaign_id,
                "about": describe_campaign(campaign, settings.templates_dir) if campaign else None,
                "state": _state_for_shop(state.state, campaign) if key is not None else state.state,
                "problems": state.problems,
                "paused_reason": state.paused_reason,
                "last_7": last_7.get(state.campaign_id, {}),
                "last_30": last_30.get(state.campaign_id, {}),
                "uplift": uplift.get(state.campaign_id),
                "variants": [v for v in variants if v["campaign"] == state.campaign_id],
            }
        )
    owned = {p for state in states.campaigns for p in state.problems}
    return {
        "campaigns": campaigns,
        # the file's own problems: those no campaign's lines hold
        "problems": [p for p in states.problems if p not in owned],
        "currency": shop.currency if shop is not None else currency_of_shop(session),
        "refreshed_at": kpis.refreshed_at if kpis else None,
        "file": str(settings.campaigns_file),
        "config": shown,
    }


def currency_of_shop(session: Session) -> str | None:
    """The shop's currency as the last outcomes run found it (``outcomes.refresh.shop_currency``
    scans every paid order: computed here only before the first run)."""
    snapshot = session.get(OutcomeSnapshot, "shop")
    if snapshot is not None:
        return cast(str | None, snapshot.data.get("currency"))
    return shop_currency(session)


def campaign_previews(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    order_number: str | None,
    shop: ShopSettings | None = None,
) -> list[MessagePreview]:
    """The campaign's email and SMS in every locale (``dispatch.previews``) in ``shop``'s
    brand (None: the default shop's), about a real order when ``order_number`` is given, else
    the sample one. InvalidInput for an unknown order, or one the shop does not have."""
    if shop is not None and order_number and not _shop_has_order(session, shop.key, order_number):
        raise InvalidInput(f"{shop.name} has no order {order_number!r}")
    profile = ShopProfile.of(shop or default_shop(settings), settings, signing_key(settings))
    return preview_campaign(
        campaign,
        shop=profile,
        renderer=renderer_for(settings),
        session=session,
        order_number=order_number or None,
    )


def _shop_has_order(session: Session, shop: str, number: str) -> bool:
    wanted = number.strip()
    names = {wanted, f"#{wanted.lstrip('#')}"}
    found = session.scalar(
        select(Order.id)
        .where(Order.shop == shop)
        .where(or_(Order.name.in_(names), Order.external_id == wanted.lstrip("#")))
        .limit(1)
    )
    return found is not None


def _of_shop(shop: str | None) -> Any:
    return true() if shop is None else Touchpoint.shop == shop


def recent_touchpoints(
    session: Session, campaign_id: str, *, shop: str | None = None, limit: int = 50
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
        .where(Touchpoint.campaign_id == campaign_id, _of_shop(shop))
        .order_by(Touchpoint.id.desc())
        .limit(limit)
    ).all()
    return [row._asdict() for row in rows]


def skip_reasons(
    session: Session,
    campaign_id: str,
    *,
    since: datetime,
    now: datetime,
    shop: str | None = None,
) -> list[tuple[str, int]]:
    """Why the campaign's messages due between ``since`` and ``now`` were skipped, most common
    first (a range of the touchpoints' (status, due_at) index)."""
    return [
        (str(reason), int(n))
        for reason, n in session.execute(
            select(Touchpoint.reason, func.count())
            .where(
                Touchpoint.status == TouchpointStatus.SKIPPED,
                Touchpoint.due_at.between(since, now),
                Touchpoint.campaign_id == campaign_id,
                _of_shop(shop),
            )
            .group_by(Touchpoint.reason)
            .order_by(func.count().desc())
            .limit(10)
        )
    ]
