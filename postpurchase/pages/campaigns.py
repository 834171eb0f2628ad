"""The campaigns pages for marketers: every campaign's state, timing and results, and one
campaign's conditions, cancel rules, messages in every locale and recent touchpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from postpurchase.pages.auth import Reader
from postpurchase.pages.campaign_data import (
    campaigns_overview,
    previews,
    read_campaigns,
    recent_touchpoints,
    skip_reasons,
)
from postpurchase.pages.context import pages_context
from postpurchase.pages.rendering import page

router = APIRouter()


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, user: Reader) -> HTMLResponse:
    context = pages_context(request)
    settings = context.settings()
    with context.factory()() as session:
        overview = campaigns_overview(session, settings, now=context.clock())
    return page(request, "campaigns.html", user=user, **overview)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, user: Reader, campaign_id: str) -> HTMLResponse:
    context = pages_context(request)
    settings = context.settings()
    with context.factory()() as session:
        overview = campaigns_overview(session, settings, now=context.clock())
        shown = next((c for c in overview["campaigns"] if c["about"].id == campaign_id), None)
        if shown is None:
            return page(
                request,
                "campaigns.html",
                user=user,
                root="../",
                status_code=404,
                missing=campaign_id,
                **overview,
            )
        touchpoints = recent_touchpoints(session, campaign_id)
        reasons = skip_reasons(session, campaign_id)
    config = read_campaigns(settings).config
    campaign = config.by_id(campaign_id) if config else None
    return page(
        request,
        "campaign.html",
        user=user,
        root="../",
        c=shown,
        currency=overview["currency"],
        previews=previews(settings, campaign, shown["about"]) if campaign else [],
        touchpoints=touchpoints,
        reasons=reasons,
    )
