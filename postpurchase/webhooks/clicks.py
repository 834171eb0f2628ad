"""``GET|HEAD /c/{token}``: count a click on a message link, then 302 to its destination.

The token is verified before anything else; a forged or altered one gets a 400 page and no
redirect, so the route is never an open redirect. The click is stored as a message event
(provider ``redirect``) with the request method and user agent, which the outcome refresh
uses to tell scanners from people. A database that cannot be reached loses the count, never
the customer: the redirect is answered anyway.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from postpurchase import feedback
from postpurchase.exceptions import InvalidInput
from postpurchase.messages.tokens import signing_key
from postpurchase.outcomes.clicks import read_click
from postpurchase.store.database import transaction
from postpurchase.store.models import Touchpoint
from postpurchase.webhooks.deps import RuntimeDep

router = APIRouter()
log = logging.getLogger(__name__)


@router.get("/c/{token}")
@router.head("/c/{token}")  # scanners probe with HEAD: answered, counted apart
def click(token: str, request: Request, runtime: RuntimeDep) -> Response:
    settings = runtime.settings()
    try:
        link = read_click(signing_key(settings), token)
    except InvalidInput:
        return HTMLResponse("<!DOCTYPE html><title>Link not valid</title>", status_code=400)
    try:
        with transaction(runtime.factory()) as session:
            known = session.scalar(select(Touchpoint.id).where(Touchpoint.id == link.touchpoint_id))
            feedback.record_events(
                session,
                [
                    {
                        "provider": "redirect",
                        "provider_event_id": uuid.uuid4().hex,  # every request is a click
                        "touchpoint_id": known,
                        "provider_message_id": None,
                        "event": "click",
                        "occurred_at": datetime.now(UTC),
                        "detail": {
                            "url": link.url,
                            "link": link.link,
                            "links": link.links,
                            "method": request.method,
                            "user_agent": request.headers.get("user-agent", "")[:200],
                        },
                    }
                ],
            )
    except Exception as exc:  # the customer still gets where they clicked
        log.warning("click on touchpoint %d not recorded: %s", link.touchpoint_id, exc)
    return RedirectResponse(link.url, status_code=302)
