"""Routes for the links customers click in messages: unsubscribe and the 1-5 survey.

A GET never changes anything: mail security scanners open every link in a message (all five
survey scores, the unsubscribe link), so a GET only shows a page with one button, and the
POST that button sends is what counts.

- ``GET /u/{token}`` shows the unsubscribe page; ``POST /u/{token}`` unsubscribes (also the
  List-Unsubscribe-Post one-click target). With the database down the unsubscribe is spooled
  to disk and applied when it is back (mail clients never retry a one-click unsubscribe).
- ``GET /s/{token}`` shows the five scores with the clicked one preselected, a comment box
  and one button; ``POST /s/{token}`` records the score chosen on the page (the link's
  score if none is sent) and the comment. A 1 or 2 also emits ``feedback.negative`` and
  tells the support team (``postpurchase.surveys``).
  A later answer for the same message replaces an earlier one: what the person last chose is
  kept. With the database down the page asks to try again (503); nothing is recorded.
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

from postpurchase import feedback
from postpurchase.exceptions import ConfigError
from postpurchase.messages.tokens import LinkClaim, Purpose
from postpurchase.outcomes.clicks import record_unsubscribe
from postpurchase.settings import Settings
from postpurchase.store.database import transaction
from postpurchase.surveys import answers
from postpurchase.webhooks import openapi, opt_out_spool
from postpurchase.webhooks.deps import Runtime, RuntimeDep
from postpurchase.webhooks.intake import read_body
from postpurchase.webhooks.link_pages import (
    COMMENT_BOX,
    busy_page,
    claim_shop,
    invalid_page,
    link_claim,
    link_settings,
    page,
)
from postpurchase.webhooks.rejections import Rejection

log = logging.getLogger(__name__)
router = APIRouter()

_BUTTON = "padding:12px 22px;font-size:16px;"
_FORM_LIMIT = 16384  # a score, a comment of 2000 characters encoded, or the one-click marker


def _claim(settings: Settings, token: str, purpose: Purpose) -> LinkClaim | None:
    claim = link_claim(settings, token, purpose)
    if claim is not None and purpose == "survey":
        return claim if claim.score is not None and 1 <= claim.score <= 5 else None
    return claim


@router.get("/u/{token}")
def unsubscribe_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    settings = link_settings(runtime, "a customer link")
    claim = _claim(settings, token, "unsubscribe")
    if claim is None:
        return invalid_page(settings, "unsubscribe")
    shop = claim_shop(runtime, settings, claim)
    form = (
        f'<form method="post" action="{html.escape(token)}">'
        f'<button type="submit" style="{_BUTTON}">Unsubscribe me</button></form>'
    )
    return page(
        settings,
        "Unsubscribe",
        f"Stop receiving emails from {html.escape(shop.name)}?",
        200,
        extra=form,
        shop=shop,
    )


@router.post("/u/{token}", openapi_extra=openapi.ONE_CLICK)
async def unsubscribe(token: str, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    settings = link_settings(runtime, "a customer link")
    try:
        await read_body(request, _FORM_LIMIT)  # "List-Unsubscribe=One-Click": nothing to use
    except Rejection as rejection:
        return page(settings, "Not accepted", html.escape(rejection.reason), 413)
    claim = _claim(settings, token, "unsubscribe")
    if claim is None:
        return invalid_page(settings, "unsubscribe")
    done = await run_in_threadpool(_unsubscribe, runtime, claim)
    if not done:
        return invalid_page(settings, "unsubscribe", 404)
    shop = await run_in_threadpool(claim_shop, runtime, settings, claim)
    return page(
        settings,
        "Unsubscribed",
        f"You will no longer receive emails from {html.escape(shop.name)}.",
        200,
        shop=shop,
    )


def _unsubscribe(runtime: Runtime, claim: LinkClaim) -> bool:
    """Unsubscribe now, or spool it when the database is away; False for an unknown customer."""
    now = datetime.now(UTC)
    customer_id, reference = claim.customer_id, f"touchpoint:{claim.touchpoint_id}"
    settings = runtime.settings()
    try:
        runtime.replayer.replay_now()
        with transaction(runtime.factory()) as session:
            done = feedback.unsubscribe_email(
                session, customer_id=customer_id, source="link", now=now, reference=reference
            )
            if done:  # counted against the message's campaign (outcomes)
                record_unsubscribe(session, touchpoint_id=claim.touchpoint_id, now=now)
            return done
    except (SQLAlchemyError, ConfigError) as exc:
        log.error("database unavailable for an unsubscribe (%s): spooling it", exc)
        opt_out_spool.keep(
            settings,
            opt_out_spool.EMAIL_UNSUBSCRIBE,
            at=now,
            customer_id=customer_id,
            source="link",
            reference=reference,
        )
        runtime.replayer.start_retrying()
        return True  # the link is genuine: the customer is told it is done, and it will be


@router.get("/s/{token}")
def survey_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    settings = link_settings(runtime, "a customer link")
    claim = _claim(settings, token, "survey")
    if claim is None:
        return invalid_page(settings, "survey")
    choices = "".join(
        f'<label style="margin:0 8px;font-size:18px;"><input type="radio" name="score" '
        f'value="{score}"{" checked" if score == claim.score else ""}> {score}</label>'
        for score in range(1, 6)
    )
    form = (
        f'<form method="post" action="{html.escape(token)}"><p>{choices}</p>'
        f"{COMMENT_BOX}"
        f'<button type="submit" style="{_BUTTON}">Send my answer</button></form>'
    )
    return page(
        settings,
        "How was your delivery?",
        "1 is poor, 5 is excellent. Check your score and send it.",
        200,
        extra=form,
        shop=claim_shop(runtime, settings, claim),
    )


@router.post("/s/{token}", openapi_extra=openapi.SURVEY_ANSWER)
async def survey_answer(token: str, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    settings = link_settings(runtime, "a customer link")
    try:
        body = await read_body(request, _FORM_LIMIT)
    except Rejection as rejection:
        return page(settings, "Not accepted", html.escape(rejection.reason), 413)
    claim = _claim(settings, token, "survey")
    if claim is None:
        return invalid_page(settings, "survey")
    form = dict(parse_qsl(body.decode("utf-8", errors="replace")))
    chosen = form.get("score", str(claim.score)).strip()
    if chosen not in {"1", "2", "3", "4", "5"}:
        return page(settings, "Not accepted", "Please choose a score from 1 to 5.", 422)
    score = int(chosen)
    try:
        recorded = await run_in_threadpool(
            _record_survey, runtime, claim, score, form.get("comment")
        )
    except (SQLAlchemyError, ConfigError) as exc:
        log.error("could not record a survey answer: %s", type(exc).__name__)
        return busy_page(settings)
    if not recorded:
        return invalid_page(settings, "survey", 404)
    return page(
        settings,
        "Thank you!",
        f"You rated your delivery {score} out of 5. Thank you for telling us.",
        200,
        shop=await run_in_threadpool(claim_shop, runtime, settings, claim),
    )


def _record_survey(runtime: Runtime, claim: LinkClaim, score: int, comment: str | None) -> bool:
    support = runtime.settings()
    with transaction(runtime.factory()) as session:
        return answers.record_csat(
            session,
            touchpoint_id=claim.touchpoint_id,
            customer_id=claim.customer_id,
            score=score,
            comment=comment,
            support=support,
            now=datetime.now(UTC),
        )
