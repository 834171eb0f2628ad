"""Routes for what providers send back: delivery events, delivery status, STOP.

- ``POST /webhooks/sendgrid/events``: ECDSA-verified (raw body), signed within
  ``POSTPURCHASE_SENDGRID_EVENT_TOLERANCE_SECONDS``; every event becomes a message event,
  deduplicated by ``sg_event_id``; bounce (not ``blocked``), dropped, spamreport,
  unsubscribe and group_unsubscribe suppress the address; group_resubscribe lifts it. An
  event that cannot be stored (a field out of range) is skipped and counted, the rest stored.
- ``POST /webhooks/twilio/status``: ``X-Twilio-Signature``-verified delivery status.
- ``POST /webhooks/twilio/inbound``: STOP family opts the number out at once, START opts it
  back in, HELP answers with the help text of the shop texted (TwiML).

Every route checks its configuration first, then reads the body through the same
size-limited reader as intake (413 before a byte too many is held), then verifies.
Refused requests are counted in ``rejected_webhooks`` like refused purchase webhooks, so ops
can see a provider sending with an old key.

Database down: SendGrid and Twilio status callbacks are retried by the sender, so they get
503 + Retry-After. Twilio never retries an inbound message: a STOP is spooled to disk
(``opt_out_spool``) and confirmed, and applied when the database is back.

Signed URLs are checked against ``POSTPURCHASE_PUBLIC_BASE_URL``: behind a proxy or mounted
in Airflow, the URL the provider called is the public one, not the one this process sees.
"""

from __future__ import annotations

import binascii
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from postpurchase import feedback
from postpurchase.airflow_glue.connections import connection_fields
from postpurchase.channels.configured import sendgrid_event_keys, twilio_auth_tokens
from postpurchase.exceptions import ConfigError
from postpurchase.messages.tokens import signing_keys
from postpurchase.provider_feedback import (
    HELP_WORDS,
    START_WORDS,
    STOP_WORDS,
    sms_keyword,
    store_sendgrid_events,
    store_twilio_status,
)
from postpurchase.settings import Settings
from postpurchase.shop_settings.sms_help import help_text
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.webhooks import openapi, opt_out_spool
from postpurchase.webhooks.deps import Runtime, RuntimeDep, app_runtime
from postpurchase.webhooks.intake import read_body
from postpurchase.webhooks.rejections import Rejection

log = logging.getLogger(__name__)
router = APIRouter()


def _refuse(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def _unavailable(reason: str) -> JSONResponse:
    """503 with Retry-After: for senders that retry (SendGrid for 24 h, Twilio callbacks)."""
    return JSONResponse({"error": reason}, status_code=503, headers={"Retry-After": "60"})


def _route(request: Request) -> str:
    return request.url.path.removeprefix(request.scope.get("root_path", ""))


async def _reject(
    request: Request, settings: Settings, raw: bytes, status: int, reason: str
) -> JSONResponse:
    """Refuse a provider's request and count it for ops, as refused purchase webhooks are."""
    await run_in_threadpool(
        request.app.state.rejections.record,
        app_runtime(request).factory(),
        route=_route(request),
        rejection=Rejection(status, reason),
        headers=request.headers.items(),
        body=raw,
        cap=settings.rejected_webhook_cap,
    )
    return _refuse(status, reason)


async def _read(request: Request, settings: Settings) -> bytes | Response:
    """The raw body through intake's size-limited reader, or the refusal to send back."""
    try:
        return await read_body(request, settings.webhook_max_body_bytes)
    except Rejection as rejection:
        return await _reject(request, settings, b"", rejection.status_code, rejection.reason)


def _settings(runtime: Runtime) -> Settings | Response:
    try:
        return runtime.settings()
    except ConfigError as exc:
        log.error("provider webhooks are misconfigured: %s", exc)
        return _unavailable("the server's configuration is invalid")


@router.post("/webhooks/sendgrid/events", openapi_extra=openapi.SENDGRID_EVENTS)
async def sendgrid_events(request: Request, runtime: RuntimeDep) -> Response:
    settings = _settings(runtime)
    if isinstance(settings, Response):
        return settings
    try:
        keys = sendgrid_event_keys(settings)
    except ConfigError as exc:
        log.error("cannot verify SendGrid events: %s", exc)
        return _unavailable("the shops' SendGrid accounts cannot be read (see the log)")
    if not keys:
        return _unavailable("POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY is not configured")
    raw = await _read(request, settings)
    if isinstance(raw, Response):
        return raw
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature")
    timestamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp")
    if not signature or not timestamp:
        return await _reject(
            request,
            settings,
            raw,
            401,
            "missing X-Twilio-Email-Event-Webhook-Signature or -Timestamp",
        )
    if not any(_verifies(key, raw, signature, timestamp) for key in keys):
        return await _reject(
            request, settings, raw, 401, "SendGrid event signature does not verify"
        )
    now = datetime.now(UTC)
    # Signed, but possibly captured and replayed: the signed timestamp must be recent.
    age = _age_seconds(timestamp, now)
    if age is None or abs(age) > settings.sendgrid_event_tolerance_seconds:
        reason = (
            f"SendGrid event timestamp is not within "
            f"{settings.sendgrid_event_tolerance_seconds} s of now"
        )
        return await _reject(request, settings, raw, 401, reason)
    try:
        events = json.loads(raw)
    except ValueError as exc:
        return await _reject(request, settings, raw, 400, f"body is not JSON: {exc}")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return await _reject(
            request, settings, raw, 400, "body must be a JSON array of event objects"
        )
    try:
        new, skipped = await run_in_threadpool(
            _store_sendgrid_batch, runtime.factory(), events, now
        )
    except SQLAlchemyError as exc:
        log.error("could not store SendGrid events: %s", type(exc).__name__)
        return _unavailable("the database is unavailable")
    return JSONResponse({"received": len(events), "new": new, "skipped": skipped})


def _verifies(key: str, raw: bytes, signature: str, timestamp: str) -> bool:
    """Whether the account of public ``key`` signed this event batch."""
    try:
        return bool(EventWebhook(key).verify_signature(raw.decode("utf-8"), signature, timestamp))
    except (UnicodeDecodeError, ValueError, binascii.Error):
        return False


def _age_seconds(timestamp: str, now: datetime) -> float | None:
    try:
        return now.timestamp() - int(timestamp.strip())
    except ValueError:
        return None


def _store_sendgrid_batch(
    store: SessionFactory, events: list[dict[str, Any]], now: datetime
) -> tuple[int, int]:
    with transaction(store) as session:
        return store_sendgrid_events(session, events, now=now)


async def _twilio_form(request: Request, settings: Settings) -> dict[str, str] | Response:
    """The verified form of a Twilio webhook, or the refusal to send back. A shop with its
    own Twilio account has its webhooks signed with that account's token (its AccountSid
    names it); any other with the engine's."""
    try:
        tokens = twilio_auth_tokens(settings, connection=connection_fields)
    except ConfigError as exc:
        log.error("cannot verify a Twilio webhook: %s", exc)
        return _unavailable("the shops' Twilio accounts cannot be read (see the log)")
    if not tokens:
        return _unavailable("no Twilio auth token configured to verify X-Twilio-Signature")
    raw = await _read(request, settings)
    if isinstance(raw, Response):
        return raw
    params = dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    token = tokens.get(params.get("AccountSid", "")) or tokens.get("")
    url = settings.public_base_url.rstrip("/") + _route(request)
    if request.url.query:
        url += f"?{request.url.query}"
    signature = request.headers.get("X-Twilio-Signature", "")
    if token is None or not RequestValidator(token).validate(url, params, signature):
        reason = f"X-Twilio-Signature does not match a request to {url}"
        return await _reject(request, settings, raw, 401, reason)
    # Twilio sends none, and no database column can hold one: refused here, not a 503 later.
    nul = next((name for name, value in params.items() if "\x00" in name + value), None)
    if nul is not None:
        reason = f"form field {nul.replace(chr(0), '?')!r} holds a NUL character"
        return await _reject(request, settings, raw, 400, reason)
    return params


@router.post("/webhooks/twilio/status", openapi_extra=openapi.TWILIO_STATUS)
async def twilio_status(request: Request, runtime: RuntimeDep) -> Response:
    settings = _settings(runtime)
    if isinstance(settings, Response):
        return settings
    form = await _twilio_form(request, settings)
    if isinstance(form, Response):
        return form
    sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not status:
        reason = "MessageSid and MessageStatus are required"
        return await _reject(request, settings, b"", 400, reason)
    try:
        await run_in_threadpool(store_twilio_status, runtime.factory(), form, sid, status)
    except SQLAlchemyError as exc:
        log.error("could not store a Twilio status: %s", type(exc).__name__)
        return _unavailable("the database is unavailable")  # Twilio retries callbacks
    return Response(status_code=204)


@router.post("/webhooks/twilio/inbound", openapi_extra=openapi.TWILIO_INBOUND)
async def twilio_inbound(request: Request, runtime: RuntimeDep) -> Response:
    settings = _settings(runtime)
    if isinstance(settings, Response):
        return settings
    form = await _twilio_form(request, settings)
    if isinstance(form, Response):
        return form
    keyword = sms_keyword(form.get("Body", ""))
    phone = form.get("From", "").strip()
    reference = f"twilio:{form.get('MessageSid') or 'inbound'}"
    reply = MessagingResponse()
    try:
        if keyword in STOP_WORDS and phone:
            await run_in_threadpool(_stop, runtime, phone, reference)
        elif keyword in START_WORDS and phone:
            await run_in_threadpool(_start, runtime, phone, reference)
        elif keyword in HELP_WORDS:
            reply.message(help_text(settings, form))
    except SQLAlchemyError as exc:
        # Only a START gets here (a STOP is spooled): Twilio does not retry, and the
        # customer can send START again; never opt a number in on a guess.
        log.error("could not record an SMS opt-in: %s", type(exc).__name__)
        return _unavailable("the database is unavailable")
    return Response(str(reply), media_type="application/xml")


def _stop(runtime: Runtime, phone: str, reference: str) -> None:
    """Opt the number out now, or spool the STOP if the database is away (never drop it)."""
    now = datetime.now(UTC)
    settings = runtime.settings()
    try:
        runtime.replayer.replay_now()  # spooled opt-outs first, in the order they came
        with transaction(runtime.factory()) as session:
            feedback.opt_out_sms(
                session, phone=phone, source="sms:stop", now=now, reference=reference
            )
    except SQLAlchemyError as exc:
        log.error("database unavailable for a STOP (%s): spooling it", type(exc).__name__)
        opt_out_spool.keep(
            settings,
            opt_out_spool.SMS_STOP,
            at=now,
            phone=phone,
            source="sms:stop",
            reference=reference,
        )
        runtime.replayer.start_retrying()


def _start(runtime: Runtime, phone: str, reference: str) -> None:
    runtime.replayer.replay_now()  # a STOP spooled earlier must not be applied after this START
    if opt_out_spool.pending(runtime.settings()):
        raise _SpoolNotDrained()
    try:  # an erased customer's STOP is kept as a digest under the signing keys
        keys = signing_keys(runtime.settings())
    except ConfigError:
        keys = []
    with transaction(runtime.factory()) as session:
        feedback.opt_in_sms(
            session, phone=phone, now=datetime.now(UTC), reference=reference, keys=keys
        )


class _SpoolNotDrained(SQLAlchemyError):
    """Spooled opt-outs are still waiting: the database is not (all) back yet."""
