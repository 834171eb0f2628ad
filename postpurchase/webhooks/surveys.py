"""The NPS page: ``GET /n/{token}`` shows 0-10 with the clicked score preselected, a comment
box and one button; ``POST /n/{token}`` records the answer.

A GET records nothing (mail scanners open all eleven links of the message). A later answer
for the same message replaces the earlier one. A detractor's answer (0-6) emits
``feedback.negative`` and tells the support team (``postpurchase.surveys``). With the
database down the page asks to try again (503); nothing is recorded.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError

from postpurchase.exceptions import ConfigError
from postpurchase.feature_settings import SupportSettings
from postpurchase.messages.tokens import LinkClaim
from postpurchase.settings import Settings
from postpurchase.store.database import transaction
from postpurchase.surveys import answers
from postpurchase.webhooks.deps import Runtime, RuntimeDep
from postpurchase.webhooks.intake import read_body
from postpurchase.webhooks.link_pages import (
    COMMENT_BOX,
    claim_shop,
    invalid_page,
    link_claim,
    link_settings,
    page,
)
from postpurchase.webhooks.rejections import Rejection

log = logging.getLogger(__name__)
router = APIRouter()

_FORM_LIMIT = 16384
_SCORES = [str(n) for n in range(11)]


def _claim(settings: Settings, token: str) -> LinkClaim | None:
    claim = link_claim(settings, token, "nps")
    return claim if claim and claim.score is not None and 0 <= claim.score <= 10 else None


@router.get("/n/{token}")
def nps_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    settings = link_settings(runtime, "the NPS page")
    claim = _claim(settings, token)
    if claim is None:
        return invalid_page(settings, "survey")
    shop = claim_shop(runtime, settings, claim)
    choices = "".join(
        f'<label style="display:inline-block;margin:4px;font-size:18px;min-width:36px;">'
        f'<input type="radio" name="score" value="{n}"{" checked" if n == claim.score else ""}>'
        f"<br>{n}</label>"
        for n in range(11)
    )
    form = (
        f'<form method="post" action="{html.escape(token)}"><p>{choices}</p>'
        "<p style='color:#7a746b;font-size:13px;'>0 = not at all likely, 10 = extremely likely"
        f"</p>{COMMENT_BOX}"
        '<button type="submit" style="padding:12px 22px;font-size:16px;">Send my answer'
        "</button></form>"
    )
    return page(
        settings,
        "Would you recommend us?",
        f"How likely are you to recommend {html.escape(shop.name)} to a friend? "
        "Check your score, tell us why if you like, and send it.",
        200,
        extra=form,
        shop=shop,
    )


@router.post("/n/{token}")
async def nps_answer(token: str, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    settings = support = link_settings(runtime, "the NPS page")
    try:
        body = await read_body(request, _FORM_LIMIT)
    except Rejection as rejection:
        return page(settings, "Not accepted", html.escape(rejection.reason), 413)
    claim = _claim(settings, token)
    if claim is None:
        return invalid_page(settings, "survey")
    form = dict(parse_qsl(body.decode("utf-8", errors="replace")))
    chosen = form.get("score", str(claim.score)).strip()
    if chosen not in _SCORES:
        return page(settings, "Not accepted", "Please choose a score from 0 to 10.", 422)
    score = int(chosen)
    try:
        recorded = await run_in_threadpool(
            _record, runtime, support, claim, score, form.get("comment")
        )
    except (SQLAlchemyError, ConfigError) as exc:
        log.error("could not record an NPS answer: %s", type(exc).__name__)
        response = page(
            settings, "Please try again", "We could not save this just now. Please try again.", 503
        )
        response.headers["Retry-After"] = "60"
        return response
    if not recorded:
        return invalid_page(settings, "survey", 404)
    follow_up = (
        " We are sorry to hear it: someone from our team will be in touch." if score <= 6 else ""
    )
    return page(settings, "Thank you!", f"You answered {score} out of 10.{follow_up}", 200)


def _record(
    runtime: Runtime,
    support: SupportSettings,
    claim: LinkClaim,
    score: int,
    comment: str | None,
) -> bool:
    with transaction(runtime.factory()) as session:
        return answers.record_nps(
            session,
            touchpoint_id=claim.touchpoint_id,
            customer_id=claim.customer_id,
            score=score,
            comment=comment,
            support=support,
            now=datetime.now(UTC),
        )
