"""From an HTTP request to an inbox entry: size, content type, signature, JSON, normalising.

Each ``*_entry`` function takes the request's parts and returns what to store, or raises
``Rejection`` with the status and reason to answer. The checks run cheapest and safest first:
the body size before reading it all, the signature over the raw bytes before parsing them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from postpurchase.event_structs import CheckedEvent
from postpurchase.events import CanonicalEvent
from postpurchase.inbox import InboxEntry, dedupe_key, unstorable_field
from postpurchase.platforms import generic, shopify, woocommerce, woocommerce_products
from postpurchase.platforms.fields import InvalidPayload
from postpurchase.privacy import generic_requests as privacy_generic
from postpurchase.privacy import requests as privacy_requests
from postpurchase.settings import ENV_PREFIX, Settings
from postpurchase.webhooks.rejections import Rejection
from postpurchase.webhooks.signatures import (
    BadSignature,
    verify_base64_hmac,
    verify_generic,
)

_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without spaces: ids, topics, domains
# How NUL or a lone surrogate can reach a parsed JSON string: an escape (\u0000, \udXXX), or
# (json.loads decodes with surrogatepass) the raw UTF-8 bytes of a surrogate, which start with
# 0xED. Byte tests are cheap; a hit (also legitimate text such as an escaped Hangul "\ud55c")
# only asks for a full check.
_SURROGATE_LEAD = b"\xed"
_SUSPICIOUS_ESCAPES = (b"u0000", b"ud", b"uD")  # what follows the backslash
_BACKSLASH = ord("\\")  # a byte given as a number: found without making a one-byte needle
# Clocks of shops and platforms drift a little; a time further ahead than this is wrong, and
# stored as an order's version it would make every real update look stale for good.
FUTURE_TOLERANCE = timedelta(minutes=10)


class Ping:
    """WooCommerce's test delivery when a webhook is created: answered 200, nothing stored."""


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    return await receive_body(request.receive, request.headers.get("content-length"), limit)


async def receive_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """``read_body`` from the ASGI messages themselves, ``declared`` being the request's
    Content-Length, for routes that make no ``Request``. A client that hangs up mid-body
    raises ClientDisconnect, as Starlette's ``Request`` does."""
    if declared is not None:
        if not declared.strip().isdigit():
            raise Rejection(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise Rejection(413, f"body of {int(declared)} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Rejection(413, f"body is over the {limit}-byte limit")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect


def _require_json(headers: Mapping[str, str]) -> None:
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        shown = media_type or "none"
        raise Rejection(415, f"Content-Type must be application/json, not {shown}")


def _header(headers: Mapping[str, str], name: str, *, max_length: int) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise Rejection(400, f"missing {name} header")
    if len(value) > max_length or not _TOKEN.match(value):
        raise Rejection(400, f"{name} header must be 1 to {max_length} printable characters")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# msgspec parses a webhook in about half the time json.loads takes. It refuses a few documents
# json.loads accepts (lone surrogate escapes, UTF-16 text, nesting just under the recursion
# limit) and gives other messages; what it accepts, json.loads reads the same (checked by a
# differential test). So json.loads decides whenever msgspec refuses: answers and messages
# stay exactly those of the standard parser.
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``, numbers with a fraction as Decimal (never float)."""
    try:
        return _DECODER.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):
        pass
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        raise Rejection(400, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # includes JSONDecodeError and undecodable bytes
        raise Rejection(400, f"malformed JSON: {exc}") from None


def _not_ahead(event: CanonicalEvent | CheckedEvent, now: datetime) -> None:
    limit = now + FUTURE_TOLERANCE
    for path, value in event.times():
        try:
            # Compared with the limit in the time's own zone: times in two zones compare by
            # working out both offsets twice, about twice the CPU of converting the limit.
            # A webhook's times carry fixed offsets (they are read from text), so in one
            # zone their fields compare as the instants do.
            ahead = value > limit.astimezone(value.tzinfo)
        except OverflowError:
            continue  # out of range: unstorable_field names it
        if ahead:
            raise Rejection(
                422,
                "invalid content",
                [(path, f"{value.isoformat()} is in the future (now {now.isoformat()})")],
            )


def _suspicious(body: bytes) -> bool:
    """Whether ``body``, a valid JSON document, may hold a NUL or a lone surrogate.

    Escapes are found by their backslash, a one-byte search (searches for longer needles
    cost several times more, once per needle); each escape is looked at where it is.
    """
    if _SURROGATE_LEAD in body:
        return True
    at = body.find(b"\\")
    while at >= 0:
        if body.startswith(_SUSPICIOUS_ESCAPES, at + 1):
            return True
        at = body.find(b"\\", at + 2)  # past the escaped character (an escaped backslash too)
    return False


def _checked(entry: InboxEntry, *, texts: bool) -> InboxEntry:
    path = unstorable_field(entry, texts=texts)
    if path is not None:
        raise Rejection(
            422,
            "invalid content",
            [(path, "contains a NUL character, a lone surrogate or an out-of-range time")],
        )
    return entry


def _event_json_escapes(entry: InboxEntry) -> bool:
    """Whether the JSON to be stored of a Shopify webhook's event holds an escape: what
    ``_suspicious`` tells of the body, told by one byte of a smaller document.

    The entry's other texts are header values held to printable ASCII (``_header``), and
    the canonical event's validation lets no lone surrogate through (its strings are
    stripped, which refuses them), so the one unstorable character it can hold is a NUL,
    which that JSON writes as an escape. The JSON is made once and stored as it is
    (``InboxEntry.payload_json``); unlike the body, it escapes no other text (non-ASCII
    letters, HTML characters) whose escapes would each be looked at, a few microseconds of
    an order webhook.
    """
    return _BACKSLASH in entry.payload_json


def _invalid(exc: InvalidPayload) -> Rejection:
    return Rejection(422, "invalid content", exc.problems)


def _mismatch(exc: shopify.TopicMismatch) -> Rejection:
    return Rejection(422, "body does not match X-Shopify-Topic", exc.problems)


def _signature_failed(exc: BadSignature) -> Rejection:
    return Rejection(401, f"bad signature: {exc}")


def _triggered_at(headers: Mapping[str, str], now: datetime) -> datetime:
    raw = headers.get("x-shopify-triggered-at", "")
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return now
    if value.tzinfo is None or abs((value - now).total_seconds()) > 366 * 86400:
        return now  # implausible: the arrival time is the better guess
    return value.astimezone(UTC)


def shopify_entry(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> InboxEntry:
    """Shopify: HMAC with the shop's secret, dedupe on topic + event id (else webhook id)."""
    _require_json(headers)
    shop = headers.get("x-shopify-shop-domain", "").strip().lower()
    secret = settings.shopify_webhook_secrets.get(shop) or settings.shopify_webhook_secret
    if secret is None:
        if not settings.shopify_webhook_secrets:
            raise Rejection(
                503, f"Shopify intake is not configured ({ENV_PREFIX}SHOPIFY_WEBHOOK_SECRET)"
            )
        raise Rejection(401, "bad signature: no webhook secret is configured for this shop")
    try:
        verify_base64_hmac(
            body,
            headers.get("x-shopify-hmac-sha256"),
            secret.get_secret_value(),
            header_name="X-Shopify-Hmac-Sha256",
        )
    except BadSignature as exc:
        raise _signature_failed(exc) from None
    shop = _header(headers, "x-shopify-shop-domain", max_length=255).lower()
    topic = _header(headers, "x-shopify-topic", max_length=128)
    if headers.get("x-shopify-event-id"):
        delivery = _header(headers, "x-shopify-event-id", max_length=64)
    else:
        delivery = _header(headers, "x-shopify-webhook-id", max_length=64)
    key = dedupe_key(shopify.SOURCE, shop, topic, delivery)
    received_at = _triggered_at(headers, now)
    # Most webhooks are plain orders: decoded straight from the bytes, to the same event at a
    # fraction of the cost (shopify_structs). Anything else is parsed and validated in full.
    order = shopify.decoded_order(topic, body)
    data = parse_json(body) if order is None else None
    if topic in privacy_requests.SHOPIFY_TOPICS:  # compliance webhooks: postpurchase.privacy
        try:
            entry = privacy_requests.shopify_entry(
                topic, data, source=shopify.SOURCE, shop=shop, key=key, received_at=received_at
            )
        except InvalidPayload as exc:
            raise _invalid(exc) from None
        return _checked(entry, texts=_suspicious(body))
    test = order.test is True if order is not None else shopify.is_test_order(topic, data)
    if test and not settings.include_test_orders:
        # Recorded (a redelivery stays a duplicate) but never processed: no customer, order,
        # points or message comes from a test order, and its body is not kept.
        return InboxEntry.ignored(
            source=shopify.SOURCE,
            dedupe_key=key,
            topic=topic,
            shop=shop,
            received_at=received_at,
            reason="test order",
        )
    notes: list[str] = []
    try:
        if order is not None:
            event: CanonicalEvent | CheckedEvent | None = shopify.normalise_order(
                topic, order, received_at=received_at, region=settings.shop_country, notes=notes
            )
        else:
            event = shopify.normalise(
                topic,
                data,
                received_at=received_at,
                shop=shop,
                default_region=settings.shop_country,
                notes=notes,
            )
    except shopify.TopicMismatch as exc:
        raise _mismatch(exc) from None
    except InvalidPayload as exc:
        raise _invalid(exc) from None
    if event is None:
        return InboxEntry.ignored(
            source=shopify.SOURCE, dedupe_key=key, topic=topic, shop=shop, received_at=received_at
        )
    _not_ahead(event, now)
    entry = InboxEntry.for_event(
        event, source=shopify.SOURCE, dedupe_key=key, topic=topic, shop=shop, notes=tuple(notes)
    )
    return _checked(entry, texts=_event_json_escapes(entry))


def woocommerce_entry(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> InboxEntry | Ping:
    """WooCommerce: HMAC, the creation ping, dedupe on webhook + order + modified + status."""
    if "x-wc-webhook-signature" not in headers and woocommerce.ping_webhook_id(body):
        return Ping()
    _require_json(headers)
    secret = settings.woocommerce_webhook_secret
    if secret is None:
        raise Rejection(
            503, f"WooCommerce intake is not configured ({ENV_PREFIX}WOOCOMMERCE_WEBHOOK_SECRET)"
        )
    try:
        verify_base64_hmac(
            body,
            headers.get("x-wc-webhook-signature"),
            secret.get_secret_value(),
            header_name="X-WC-Webhook-Signature",
        )
    except BadSignature as exc:
        raise _signature_failed(exc) from None
    topic = _header(headers, "x-wc-webhook-topic", max_length=128)
    webhook_id = _header(headers, "x-wc-webhook-id", max_length=64)
    source = headers.get("x-wc-webhook-source", "").strip()[:255] or None
    data = parse_json(body)
    notes: list[str] = []
    try:
        event = woocommerce.normalise(
            topic, data, received_at=now, default_region=settings.shop_country, notes=notes
        )
    except InvalidPayload as exc:
        raise _invalid(exc) from None
    site = source or "-"
    if event is None:
        digest = hashlib.sha256(body).hexdigest()
        return InboxEntry.ignored(
            source=woocommerce.SOURCE,
            dedupe_key=dedupe_key(woocommerce.SOURCE, site, webhook_id, topic, digest),
            topic=topic,
            shop=source,
            received_at=now,
        )
    _not_ahead(event, now)
    if event.product is not None:
        delivery = headers.get("x-wc-webhook-delivery-id", "").strip()[:64]
        parts = woocommerce_products.dedupe_key_parts(webhook_id, event, delivery)
    else:
        parts = woocommerce.dedupe_key_parts(webhook_id, event)
    key = dedupe_key(woocommerce.SOURCE, site, *parts)
    return _checked(
        InboxEntry.for_event(
            event,
            source=woocommerce.SOURCE,
            dedupe_key=key,
            topic=topic,
            shop=source,
            notes=tuple(notes),
        ),
        texts=_suspicious(body),
    )


def _verified_generic(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> Any:
    """The JSON of a body signed with the generic secret (timestamped HMAC, replays refused)."""
    _require_json(headers)
    secret = settings.webhook_secret
    if secret is None:
        raise Rejection(503, f"generic intake is not configured ({ENV_PREFIX}WEBHOOK_SECRET)")
    try:
        verify_generic(
            body,
            headers.get("x-postpurchase-signature"),
            secret.get_secret_value(),
            now=now.timestamp(),
            tolerance=settings.webhook_tolerance_seconds,
        )
    except BadSignature as exc:
        raise _signature_failed(exc) from None
    return parse_json(body)


def privacy_entry(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> InboxEntry:
    """A data subject request from another platform (``postpurchase.privacy.generic_requests``),
    signed like generic events; dedupe on the sender's request id."""
    data = _verified_generic(settings, headers, body, now)
    try:
        entry = privacy_generic.entry(data, now=now)
    except InvalidPayload as exc:
        raise _invalid(exc) from None
    return _checked(entry, texts=_suspicious(body))


def generic_entry(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> InboxEntry:
    """Generic events: timestamped HMAC (replays refused), dedupe on the sender's event id."""
    data = _verified_generic(settings, headers, body, now)
    notes: list[str] = []
    try:
        event_id, shop, event = generic.parse(
            data, default_region=settings.shop_country, notes=notes
        )
    except InvalidPayload as exc:
        raise _invalid(exc) from None
    _not_ahead(event, now)
    key = dedupe_key(generic.SOURCE, shop or "-", event_id)
    return _checked(
        InboxEntry.for_event(
            event,
            source=generic.SOURCE,
            dedupe_key=key,
            topic=event.type.value,
            shop=shop,
            notes=tuple(notes),
        ),
        texts=_suspicious(body),
    )
