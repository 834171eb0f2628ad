"""The campaigns pages for marketers: every campaign's state, timing and results, and one
campaign's conditions, cancel rules, messages in every locale (about the sample order, or a
real one by its number) and recent touchpoints."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.pages.auth import Reader
from postpurchase.pages.campaign_data import (
    campaign_previews,
    campaigns_overview,
    recent_touchpoints,
    skip_reasons,
)
from postpurchase.pages.context import pages_context
from postpurchase.pages.rendering import page
from postpurchase.pages.shop_choice import shop_choice

router = APIRouter()


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, user: Reader) -> HTMLResponse:
    context = pages_context(request)
    settings = context.settings()
    shop = shop_choice(request, settings)
    with context.factory()() as session:
        overview = campaigns_overview(session, settings, now=context.clock(), shop=shop.chosen)
    return page(request, "campaigns.html", user=user, shop=shop, **overview)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    request: Request, user: Reader, campaign_id: str, order: str = ""
) -> HTMLResponse:
    context = pages_context(request)
    settings = context.settings()
    shop = shop_choice(request, settings)
    with context.factory()() as session:
        overview = campaigns_overview(session, settings, now=context.clock(), shop=shop.chosen)
        shown = next((c for c in overview["campaigns"] if c["id"] == campaign_id), None)
        if shown is None:
            return page(
                request, "campaigns.html", user=user, root="../", status_code=404,
                missing=campaign_id, shop=shop, **overview,
            )  # fmt: skip
        config = overview["config"]
        campaign = config.by_id(campaign_id) if config else None
        problem = None
        previews = []
        if campaign is not None:
            try:
                previews = campaign_previews(
                    session, settings, campaign, order.strip(), shop.chosen
                )
            except InvalidInput as exc:
                problem = f"{exc}; showing the sample order"
                previews = campaign_previews(session, settings, campaign, None, shop.chosen)
            except ConfigError as exc:  # e.g. no signing secret: the links cannot be made
                problem = f"the messages cannot be rendered here: {exc}"
        touchpoints = recent_touchpoints(session, campaign_id, shop=shop.key)
        now = context.clock()
        since = now - timedelta(days=7)
        reasons = skip_reasons(session, campaign_id, since=since, now=now, shop=shop.key)
    return page(
        request,
        "campaign.html",
        user=user,
        root="../",
        shop=shop,
        keep={"order": order} if order else None,
        c=shown,
        currency=overview["currency"],
        previews=previews,
        order=order,
        order_problem=problem,
        touchpoints=touchpoints,
        reasons=reasons,
    )
