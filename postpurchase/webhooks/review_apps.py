"""Review webhooks of Judge.me (``POST /webhooks/judgeme``) and Yotpo
(``POST /webhooks/yotpo/{token}``): verified as each service allows, then stored as
``review.submitted`` events (``postpurchase.reviews.external``).

Answers: 200 with what was done (stored, duplicate, no matching order), 401 for a bad
signature or token, 400 for a body that is not a review, 503 when not configured or the
database is away (both services retry).
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from postpurchase.exceptions import ConfigError
from postpurchase.feature_settings import ReviewAppSettings
from postpurchase.reviews import external
from postpurchase.settings import Settings
from postpurchase.store.database import transaction
from postpurchase.webhooks.deps import Runtime, RuntimeDep
from postpurchase.webhooks.intake import read_body
from postpurchase.webhooks.rejections import Rejection

log = logging.getLogger(__name__)
router = APIRouter()
_JUDGEME = "/webhooks/judgeme"
_YOTPO = "/webhooks/yotpo/{token}"


def _answer(status: int, **body: object) -> JSONResponse:
    headers = {"Retry-After": "60"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _refused(
    request: Request, runtime: Runtime, raw: bytes, status: int, reason: str, route: str
) -> JSONResponse:
    """Refuse and count it in ``rejected_webhooks``, as other refused webhooks are; the
    route is named by its pattern, so Yotpo's URL secret is never stored."""
    await run_in_threadpool(
        request.app.state.rejections.record,
        runtime.factory(),
        route=route,
        rejection=Rejection(status, reason),
        headers=request.headers.items(),
        body=raw,
        cap=runtime.settings().rejected_webhook_cap,
    )
    return _answer(status, error=reason)


def _configs(runtime: Runtime) -> tuple[Settings, ReviewAppSettings] | None:
    try:
        settings = runtime.settings()
        return settings, settings
    except ConfigError as exc:
        log.error("review webhooks are misconfigured: %s", exc)
        return None


async def _store(runtime: Runtime, review: external.ExternalReview) -> JSONResponse:
    def write() -> str:
        with transaction(runtime.factory()) as session:
            return external.record_external_review(session, review, now=datetime.now(UTC))

    try:
        outcome = await run_in_threadpool(write)
    except (SQLAlchemyError, ConfigError) as exc:
        log.error("could not store a %s review: %s", review.service, type(exc).__name__)
        return _answer(503, error="temporarily unavailable")
    return _answer(200, result=outcome)


@router.post("/webhooks/judgeme")
async def judgeme_review(request: Request, runtime: RuntimeDep) -> JSONResponse:
    configs = _configs(runtime)
    if configs is None or configs[1].judgeme_webhook_secret is None:
        return _answer(503, error="POSTPURCHASE_JUDGEME_WEBHOOK_SECRET is not configured")
    settings, apps = configs
    assert apps.judgeme_webhook_secret is not None
    try:
        raw = await read_body(request, settings.webhook_max_body_bytes)
    except Rejection as rejection:
        return _answer(rejection.status_code, error=rejection.reason)
    secret = apps.judgeme_webhook_secret.get_secret_value().encode()
    if not external.judgeme_signature_valid(
        secret, raw, request.headers.get("JUDGEME-HMAC-SHA256")
    ):
        reason = "JUDGEME-HMAC-SHA256 does not verify"
        return await _refused(request, runtime, raw, 401, reason, _JUDGEME)
    try:
        review = external.parse_judgeme(json.loads(raw))
    except ValueError:
        review = None
    if review is None:
        return await _refused(request, runtime, raw, 400, "not a Judge.me review", _JUDGEME)
    return await _store(runtime, review)


@router.post("/webhooks/yotpo/{token}")
async def yotpo_review(token: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    configs = _configs(runtime)
    if configs is None or configs[1].yotpo_webhook_token is None or not configs[1].yotpo_app_key:
        return _answer(
            503, error="POSTPURCHASE_YOTPO_WEBHOOK_TOKEN and _YOTPO_APP_KEY are not configured"
        )
    settings, apps = configs
    assert apps.yotpo_webhook_token is not None
    try:
        raw = await read_body(request, settings.webhook_max_body_bytes)
    except Rejection as rejection:
        return _answer(rejection.status_code, error=rejection.reason)
    expected = apps.yotpo_webhook_token.get_secret_value().encode()
    if not hmac.compare_digest(expected, token.encode()):
        return await _refused(request, runtime, raw, 401, "unknown webhook URL", _YOTPO)
    try:
        review, app_key = external.parse_yotpo(json.loads(raw))
    except ValueError:
        review, app_key = None, None
    if review is None:
        return await _refused(request, runtime, raw, 400, "not a Yotpo review", _YOTPO)
    shop_key = (apps.yotpo_app_key or "").encode()
    if app_key is None or not hmac.compare_digest(app_key.encode(), shop_key):
        return await _refused(request, runtime, raw, 401, "app_key is not this shop's", _YOTPO)
    return await _store(runtime, review)
