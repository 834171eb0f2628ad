"""Routes for what providers and customers send back: delivery events, STOP, links.

- ``POST /webhooks/sendgrid/events``: ECDSA-verified (raw body); every event becomes a message
  event, deduplicated by ``sg_event_id``; bounce (not ``blocked``), dropped, spamreport,
  unsubscribe and group_unsubscribe suppress the address; group_resubscribe lifts it.
- ``POST /webhooks/twilio/status``: ``X-Twilio-Signature``-verified delivery status.
- ``POST /webhooks/twilio/inbound``: STOP family opts the number out at once, START opts it
  back in, HELP answers with the shop's help text (TwiML).
- ``GET /u/{token}`` shows a one-button page, ``POST /u/{token}`` unsubscribes (also the
  List-Unsubscribe-Post one-click target). GET does not unsubscribe by itself: mail security
  scanners open every link in a message, and must not unsubscribe anyone.
- ``GET /s/{token}`` records a 1-5 survey score (last click wins) and thanks the customer.

Refused provider requests (bad signature, malformed body) are kept in ``rejected_webhooks``
like refused purchase webhooks, so ops can see a provider sending with an old key.

Signed URLs are checked against ``POSTPURCHASE_PUBLIC_BASE_URL``: behind a proxy or mounted
in Airflow, the URL the provider called is the public one, not the one this process sees.
"""

from __future__ import annotations

import binascii
import html
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from postpurchase import feedback
from postpurchase.channels.configured import twilio_auth_token
from postpurchase.exceptions import InvalidInput
from postpurchase.messages.tokens import signing_key, verify
from postpurchase.outcomes.clicks import record_unsubscribe
from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import open_store, transaction
from postpurchase.store.models import Channel, Touchpoint
from postpurchase.webhooks.rejections import Rejection, record_rejection

router = APIRouter()

_SUPPRESSING = {"bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"}
_STOP = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
_START = {"START", "YES", "UNSTOP"}
_HELP = {"HELP", "INFO"}


def _refuse(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


async def _reject(
    request: Request, settings: Settings, raw: bytes, status: int, reason: str
) -> JSONResponse:
    """Refuse a provider's request and keep it for ops, as refused purchase webhooks are."""
    await run_in_threadpool(
        record_rejection,
        open_store(settings),
        route=request.url.path.removeprefix(request.scope.get("root_path", "")),
        rejection=Rejection(status, reason),
        headers=request.headers.items(),
        body=raw,
        cap=settings.rejected_webhook_cap,
    )
    return _refuse(status, reason)


@router.post("/webhooks/sendgrid/events")
async def sendgrid_events(request: Request) -> Response:
    raw = await request.body()
    settings = load_settings()
    if not settings.sendgrid_event_public_key:
        return _refuse(503, "POSTPURCHASE_SENDGRID_EVENT_PUBLIC_KEY is not configured")
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
    try:
        valid = EventWebhook(settings.sendgrid_event_public_key).verify_signature(
            raw.decode("utf-8"), signature, timestamp
        )
    except (UnicodeDecodeError, ValueError, binascii.Error):
        valid = False
    if not valid:
        return await _reject(
            request, settings, raw, 401, "SendGrid event signature does not verify"
        )
    try:
        events = json.loads(raw)
    except ValueError as exc:
        return await _reject(request, settings, raw, 400, f"body is not JSON: {exc}")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return await _reject(
            request, settings, raw, 400, "body must be a JSON array of event objects"
        )
    with transaction(open_store(settings)) as session:
        new = _store_sendgrid_events(session, events, now=datetime.now(UTC))
    return JSONResponse({"received": len(events), "new": new})


def _store_sendgrid_events(session: Any, events: list[dict[str, Any]], *, now: datetime) -> int:
    claimed = {_int(e.get("touchpoint_id")) for e in events} - {None}
    known = set(session.execute(select(Touchpoint.id).where(Touchpoint.id.in_(claimed))).scalars())
    new = 0
    for event in events:
        event_id, kind = event.get("sg_event_id"), str(event.get("event") or "")
        if not event_id or not kind:
            continue  # nothing to deduplicate on: SendGrid always sends both
        touchpoint_id = _int(event.get("touchpoint_id"))
        row = {
            "provider": "sendgrid",
            "provider_event_id": str(event_id),
            "touchpoint_id": touchpoint_id if touchpoint_id in known else None,
            "provider_message_id": str(event.get("sg_message_id") or "").split(".")[0] or None,
            "event": kind[:32],
            "occurred_at": _from_unix(event.get("timestamp")) or now,
            "detail": event,
        }
        if not feedback.record_events(session, [row]):
            continue  # a redelivered event: already acted on
        new += 1
        email = str(event.get("email") or "").strip().lower()
        if not email:
            continue
        if kind in _SUPPRESSING and not (kind == "bounce" and event.get("type") == "blocked"):
            feedback.suppress(
                session,
                channel=Channel.EMAIL,
                address=email,
                reason=kind,
                source="sendgrid",
                now=now,
            )
        elif kind == "group_resubscribe":
            feedback.lift_suppression(session, channel=Channel.EMAIL, address=email, now=now)
    return new


async def _twilio_form(request: Request, settings: Settings) -> dict[str, str] | Response:
    """The verified form of a Twilio webhook, or the refusal to send back."""
    raw = await request.body()
    params = dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    token = twilio_auth_token(settings)
    if not token:
        return _refuse(503, "no Twilio auth token configured to verify X-Twilio-Signature")
    url = settings.public_base_url.rstrip("/") + request.url.path.removeprefix(
        request.scope.get("root_path", "")
    )
    if request.url.query:
        url += f"?{request.url.query}"
    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(token).validate(url, params, signature):
        reason = f"X-Twilio-Signature does not match a request to {url}"
        return await _reject(request, settings, raw, 401, reason)
    return params


@router.post("/webhooks/twilio/status")
async def twilio_status(request: Request) -> Response:
    settings = load_settings()
    form = await _twilio_form(request, settings)
    if isinstance(form, Response):
        return form
    sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not status:
        reason = "MessageSid and MessageStatus are required"
        return await _reject(request, settings, await request.body(), 400, reason)
    now = datetime.now(UTC)
    with transaction(open_store(settings)) as session:
        touchpoint_id = session.execute(
            select(Touchpoint.id).where(Touchpoint.provider_message_id == sid)
        ).scalar_one_or_none()
        new = feedback.record_events(
            session,
            [
                {
                    "provider": "twilio",
                    "provider_event_id": f"{sid}:{status}",
                    "touchpoint_id": touchpoint_id,
                    "provider_message_id": sid,
                    "event": status[:32],
                    "occurred_at": now,
                    "detail": form,
                }
            ],
        )
        if new and form.get("ErrorCode") == "21610" and form.get("To"):
            feedback.opt_out_sms(session, phone=form["To"], source="twilio:21610", now=now)
    return Response(status_code=204)


@router.post("/webhooks/twilio/inbound")
async def twilio_inbound(request: Request) -> Response:
    settings = load_settings()
    form = await _twilio_form(request, settings)
    if isinstance(form, Response):
        return form
    keyword = form.get("Body", "").strip().upper()
    phone = form.get("From", "").strip()
    reply = MessagingResponse()
    now = datetime.now(UTC)
    if keyword in _STOP and phone:
        with transaction(open_store(settings)) as session:
            feedback.opt_out_sms(session, phone=phone, source="sms:stop", now=now)
    elif keyword in _START and phone:
        with transaction(open_store(settings)) as session:
            feedback.opt_in_sms(session, phone=phone, now=now)
    elif keyword in _HELP:
        reply.message(settings.shop_sms_help_text)
    return Response(str(reply), media_type="application/xml")


@router.get("/u/{token}")
def unsubscribe_page(token: str) -> HTMLResponse:
    settings = load_settings()
    try:
        verify(signing_key(settings), token, "unsubscribe")
    except InvalidInput:
        return _page(settings, "Link not valid", "This unsubscribe link is not valid.", 400)
    form = (
        f'<form method="post" action="{html.escape(token)}">'
        '<button type="submit" style="padding:12px 22px;font-size:16px;">'
        "Unsubscribe me</button></form>"
    )
    return _page(
        settings,
        "Unsubscribe",
        f"Stop receiving emails from {html.escape(settings.shop_name)}?",
        200,
        extra=form,
    )


@router.post("/u/{token}")
def unsubscribe(token: str) -> HTMLResponse:
    settings = load_settings()
    try:
        claim = verify(signing_key(settings), token, "unsubscribe")
    except InvalidInput:
        return _page(settings, "Link not valid", "This unsubscribe link is not valid.", 400)
    with transaction(open_store(settings)) as session:
        done = feedback.unsubscribe_email(
            session, customer_id=claim.customer_id, source="link", now=datetime.now(UTC)
        )
        if done:  # counted against the message's campaign (outcomes)
            record_unsubscribe(session, touchpoint_id=claim.touchpoint_id, now=datetime.now(UTC))
    if not done:
        return _page(settings, "Link not valid", "This unsubscribe link is not valid.", 404)
    return _page(
        settings,
        "Unsubscribed",
        f"You will no longer receive emails from {html.escape(settings.shop_name)}.",
        200,
    )


@router.get("/s/{token}")
def survey(token: str) -> HTMLResponse:
    settings = load_settings()
    try:
        claim = verify(signing_key(settings), token, "survey")
    except InvalidInput:
        return _page(settings, "Link not valid", "This survey link is not valid.", 400)
    if claim.score is None or not 1 <= claim.score <= 5:
        return _page(settings, "Link not valid", "This survey link is not valid.", 400)
    with transaction(open_store(settings)) as session:
        recorded = feedback.record_survey(
            session,
            touchpoint_id=claim.touchpoint_id,
            customer_id=claim.customer_id,
            score=claim.score,
            now=datetime.now(UTC),
        )
    if not recorded:
        return _page(settings, "Link not valid", "This survey link is not valid.", 404)
    return _page(
        settings,
        "Thank you!",
        f"You rated your delivery {claim.score} out of 5. Thank you for telling us.",
        200,
    )


def _page(settings: Settings, title: str, text: str, status: int, extra: str = "") -> HTMLResponse:
    shop = html.escape(settings.shop_name)
    body = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} · {shop}</title></head>"
        "<body style='font-family:Helvetica,Arial,sans-serif;background:#f4f1ec;color:#2b2b2b;'>"
        "<div style='max-width:480px;margin:64px auto;background:#fff;padding:32px;"
        "border-radius:8px;text-align:center;'>"
        f"<h1 style='color:#1f3d36;font-size:22px;'>{html.escape(title)}</h1>"
        f"<p>{text}</p>{extra}<p style='color:#7a746b;font-size:13px;'>{shop}</p>"
        "</div></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _from_unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
