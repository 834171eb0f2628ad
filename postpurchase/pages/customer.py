"""The customer page for support: find a customer, see their whole story, and (Op and above)
adjust points, lift a suppression the customer asked to lift, or re-plan their messages.

Each action runs in one transaction with its record in ``page_actions`` (who, what, why), and
uses the same package function as the command line does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.campaigns.validation import load_valid_campaigns
from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.loyalty.ledger import adjust
from postpurchase.pages.auth import Actor, PageUser, Reader
from postpurchase.pages.context import back_to, pages_context
from postpurchase.pages.customer_data import customer_view, find_customers, suppressions_of
from postpurchase.pages.rendering import page
from postpurchase.pages.shop_choice import chosen_key, shop_choice
from postpurchase.processing.replan import ReplanCounts, replan_campaign
from postpurchase.store.database import transaction
from postpurchase.store.models import Customer, Touchpoint, TouchpointStatus
from postpurchase.store.page_actions import record_action

router = APIRouter()


@router.get("/customers", response_class=HTMLResponse)
def search_page(request: Request, user: Reader, q: str = "") -> HTMLResponse:
    context = pages_context(request)
    shop = shop_choice(request, context.settings())
    with context.factory()() as session:
        found = find_customers(session, q, shop.key)
        rows = [
            {
                "id": c.id,
                "name": " ".join(filter(None, [c.first_name, c.last_name])),
                "email": c.email,
                "phone": c.phone,
                "platform": f"{c.source}:{c.external_id}",
                "shop": c.shop,
            }
            for c in found
        ]
    return page(request, "customers.html", user=user, shop=shop, keep={"q": q}, q=q, found=rows)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(request: Request, user: Reader, customer_id: int) -> HTMLResponse:
    context = pages_context(request)
    shop = shop_choice(request, context.settings())
    with context.factory()() as session:
        customer = session.get(Customer, customer_id)
        if customer is None or shop.key not in (None, customer.shop):
            return page(
                request,
                "customers.html",
                user=user,
                root="../",
                shop=shop,
                q="",
                found=[],
                status_code=404,
                missing=customer_id,
            )
        view = customer_view(session, customer, now=context.clock())
        return page(request, "customer.html", user=user, root="../", shop=shop, **view)


@router.post("/customers/{customer_id}/points")
def adjust_points(
    request: Request,
    user: Actor,
    customer_id: int,
    points: Annotated[int, Form()],
    why: Annotated[str, Form()],
) -> RedirectResponse:
    context = pages_context(request)
    here = f"../{customer_id}"
    try:
        with transaction(context.factory()) as session:
            change = adjust(session, customer_id=customer_id, points=points, reason=why)
            _record(
                session,
                user,
                customer_id,
                "adjust_points",
                why,
                {"points": points, "balance": change.balance},
                context.clock(),
            )
    except InvalidInput as exc:
        return back_to(here, shop=chosen_key(request), problem=str(exc).replace("--reason", "why"))
    return back_to(
        here,
        shop=chosen_key(request),
        notice=f"{points:+d} points; the balance is now {change.balance}",
    )


@router.post("/customers/{customer_id}/lift")
def lift_suppression(
    request: Request,
    user: Actor,
    customer_id: int,
    suppression_id: Annotated[int, Form()],
    why: Annotated[str, Form()],
) -> RedirectResponse:
    context = pages_context(request)
    here = f"../{customer_id}"
    if not why.strip():
        return back_to(
            here,
            shop=chosen_key(request),
            problem="say why the suppression is lifted (the customer's words)",
        )
    now = context.clock()
    with transaction(context.factory()) as session:
        customer = session.get(Customer, customer_id)
        mine = {s.id: s for s in suppressions_of(session, customer)} if customer else {}
        suppression = mine.get(suppression_id)
        if suppression is None or suppression.lifted_at is not None:
            return back_to(
                here,
                shop=chosen_key(request),
                problem="that suppression is not an active one of this customer",
            )
        suppression.lifted_at = now
        _record(
            session,
            user,
            customer_id,
            "lift_suppression",
            why,
            {
                "suppression": suppression_id,
                "channel": str(suppression.channel),
                "reason": suppression.reason,
                "source": suppression.source,
            },
            now,
        )
    return back_to(
        here,
        shop=chosen_key(request),
        notice=f"{suppression.channel} suppression ({suppression.reason}) lifted",
    )


@router.post("/customers/{customer_id}/replan")
def replan_customer(
    request: Request, user: Actor, customer_id: int, why: Annotated[str, Form()]
) -> RedirectResponse:
    context = pages_context(request)
    here = f"../{customer_id}"
    if not why.strip():
        return back_to(here, shop=chosen_key(request), problem="say why the customer is re-planned")
    settings = context.settings()
    try:
        config = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    except ConfigError as exc:
        return back_to(
            here, shop=chosen_key(request), problem=f"the campaigns file is invalid: {exc}"
        )
    total = ReplanCounts()
    with transaction(context.factory()) as session:
        campaigns = session.scalars(
            select(Touchpoint.campaign_id)
            .where(
                Touchpoint.customer_id == customer_id, Touchpoint.status == TouchpointStatus.PLANNED
            )
            .distinct()
        ).all()
        for campaign_id in sorted(campaigns):
            counts = replan_campaign(
                session,
                config,
                campaign_id,
                customer_id=customer_id,
                shop_zone=ZoneInfo(settings.shop_time_zone),
            )
            for field in ("moved", "added", "cancelled", "unchanged"):
                setattr(total, field, getattr(total, field) + getattr(counts, field))
        _record(
            session,
            user,
            customer_id,
            "replan",
            why,
            {"campaigns": sorted(campaigns), **vars(total)},
            context.clock(),
        )
    return back_to(
        here,
        shop=chosen_key(request),
        notice=f"re-planned: {total.moved} moved, {total.added} added, "
        f"{total.cancelled} cancelled, {total.unchanged} unchanged",
    )


def _record(
    session: Session,
    user: PageUser,
    customer_id: int,
    action: str,
    why: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    record_action(
        session,
        user_name=user.name,
        action=action,
        subject=f"customer:{customer_id}",
        reason=why.strip(),
        detail=detail,
        now=now,
    )
