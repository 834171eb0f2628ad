"""The storefront API for a loyalty widget: the customer's account, and redeeming.

Two ways in, both naming the customer in a way the caller cannot forge:

- Shopify, through an App Proxy (``/apps/<subpath>`` on the shop forwards to
  ``/storefront/proxy/...``): the query carries ``shop``, ``logged_in_customer_id``,
  ``path_prefix``, ``timestamp`` and ``signature`` = hex HMAC-SHA256, keyed with the app's
  client secret, of the other parameters as sorted ``key=value`` strings (repeated keys'
  values joined by commas) concatenated without separator. An empty customer id means nobody
  is logged in (401). Timestamps older than the webhook tolerance are replays. The customer
  is the one of that shop.
- Other platforms: ``/storefront/api/...`` with ``Authorization: Bearer <key>`` (one of
  ``POSTPURCHASE_STOREFRONT_API_KEYS``), the customer as ``?customer=platform:id`` and,
  when the engine serves several shops that share ids, ``&shop=<shop>`` (409 without it); a key
  needs the ``read`` scope for the account and ``redeem`` to redeem. A redeem key belongs on
  the shop's server, never in a browser.

Answers are JSON. Requests are limited per customer (429 with Retry-After); CORS allows the
shop's own origin only (``POSTPURCHASE_STOREFRONT_ORIGIN``, default the shop URL). Redeeming
takes an idempotency key (``Idempotency-Key`` header or ``key`` in the body): a widget that
retries gets the same code.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.rewards.account import account_of
from postpurchase.rewards.redemption import (
    AmbiguousCustomer,
    CustomerRef,
    NotEnoughPoints,
    RewardUnavailable,
    UnknownCustomer,
    customer_for,
)
from postpurchase.rewards.web import RewardsRuntime, Services, rewards_of
from postpurchase.store.database import reading

router = APIRouter()
# Shopify customers exist here once they ordered (or the account webhook came).
_NO_ACCOUNT = "no loyalty account yet: points come with the first order"


def proxy_signature(params: Iterable[tuple[str, str]], secret: bytes) -> str:
    """Shopify's app-proxy signature of query ``params`` (``signature`` itself left out)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, value in params:
        if key != "signature":
            grouped[key].append(value)
    message = "".join(sorted(f"{key}={','.join(values)}" for key, values in grouped.items()))
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


class Refused(Exception):
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def _origin(svc: Services) -> str:
    parts = urlsplit(svc.settings.storefront_origin or svc.settings.shop_url)
    return f"{parts.scheme}://{parts.netloc}"


def _cors(request: Request, svc: Services, response: Response) -> Response:
    allowed = _origin(svc)
    if request.headers.get("origin") == allowed:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Vary"] = "Origin"
    return response


def _proxy_customer(request: Request, svc: Services) -> CustomerRef:
    """The logged-in Shopify customer of the signed shop, once the signature holds."""
    params = list(request.query_params.multi_items())
    given = request.query_params.get("signature", "")
    shop = request.query_params.get("shop", "").lower()
    settings = svc.settings
    secret = settings.shopify_webhook_secrets.get(shop) or settings.shopify_webhook_secret
    if secret is None:
        raise Refused(503, "the Shopify app secret is not configured")
    expected = proxy_signature(params, secret.get_secret_value().encode())
    if not given or not hmac.compare_digest(given, expected):
        raise Refused(401, "app proxy signature does not match")
    try:
        stamp = int(request.query_params.get("timestamp", ""))
    except ValueError:
        raise Refused(401, "app proxy request has no timestamp") from None
    if abs(time.time() - stamp) > settings.webhook_tolerance_seconds:
        raise Refused(401, "app proxy request is too old (a replay?)")
    customer = request.query_params.get("logged_in_customer_id", "")
    if not customer:
        raise Refused(401, "no customer is logged in")
    return CustomerRef("shopify", shop, customer)


def _key_customer(request: Request, svc: Services, scope: str) -> CustomerRef:
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    name = next(
        (
            n
            for n, key in svc.settings.storefront_api_keys.items()
            if token and hmac.compare_digest(token, key.get_secret_value())
        ),
        None,
    )
    if name is None:
        raise Refused(401, "unknown API key")
    if scope not in svc.settings.storefront_api_scopes.get(name, []):
        raise Refused(403, f"this API key lacks the {scope} scope")
    source, _, external_id = request.query_params.get("customer", "").partition(":")
    if not source or not external_id:
        raise Refused(400, "give the customer as ?customer=platform:id")
    return CustomerRef(source, request.query_params.get("shop"), external_id)


def _customer_id(svc: Services, who: CustomerRef) -> int:
    """The customer's id, in ``who.shop`` when given (else the one shop it is known in)."""
    try:
        with reading(svc.redeemer.store) as session:
            return customer_for(session, who).id
    except UnknownCustomer:
        raise Refused(404, _NO_ACCOUNT) from None
    except AmbiguousCustomer as exc:
        raise Refused(409, f"{exc}: add &shop=") from None


def _account(svc: Services, who: CustomerRef) -> dict[str, Any]:
    return account_of(svc.redeemer.store, svc.config, customer_id=_customer_id(svc, who)).as_json()


def _limit(svc: Services, who: CustomerRef) -> None:
    wait = svc.limiter.wait_needed(f"{who.source}:{who.shop or ''}:{who.external_id}")
    if wait:
        raise Refused(
            429, "too many requests for this customer", {"Retry-After": str(math.ceil(wait))}
        )


async def _answer(request: Request, rewards: RewardsRuntime, via: str, action: str) -> Response:
    try:
        svc = await rewards.ready()
    except ConfigError:
        return JSONResponse({"error": "the server's configuration is invalid"}, status_code=503)
    try:
        if via == "proxy":
            who = _proxy_customer(request, svc)
        else:
            who = _key_customer(request, svc, "read" if action == "account" else "redeem")
        _limit(svc, who)
        if action == "account":
            body, status = await run_in_threadpool(_account, svc, who), 200
        else:
            body, status = await _redeem(request, svc, who)
    except Refused as refused:
        return _cors(
            request,
            svc,
            JSONResponse({"error": refused.reason}, refused.status, headers=refused.headers),
        )
    return _cors(request, svc, JSONResponse(body, status_code=status))


async def _redeem(request: Request, svc: Services, who: CustomerRef) -> tuple[dict[str, Any], int]:
    try:
        given = await request.json()
    except ValueError:
        given = None
    if not isinstance(given, dict) or not isinstance(given.get("reward"), str):
        raise Refused(400, 'send JSON {"reward": "<name>"}')
    key = request.headers.get("idempotency-key") or given.get("key") or uuid.uuid4().hex
    if not isinstance(key, str) or not 1 <= len(key) <= 100:
        raise Refused(400, "the idempotency key must be 1 to 100 characters")
    try:
        # One thread hop, one transaction: the customer is found as the points are spent.
        view = await run_in_threadpool(
            svc.redeemer.redeem, who, given["reward"], key, key_scope="store"
        )
    except UnknownCustomer:
        raise Refused(404, _NO_ACCOUNT) from None
    except AmbiguousCustomer as exc:
        raise Refused(409, f"{exc}: add &shop=") from None
    except NotEnoughPoints as exc:
        raise Refused(409, str(exc)) from None
    except RewardUnavailable as exc:
        raise Refused(409, str(exc)) from None
    except InvalidInput as exc:
        raise Refused(400, str(exc)) from None
    body = {
        "status": view.status.value,
        "reward": view.reward,
        "code": view.code,
        "points": view.points,
        "expires_at": view.expires_at.isoformat(),
        "key": key,
    }
    if view.error and view.code is None:
        body["error"] = view.error
    # 201 with a code; 202 while the platform is still making it (retry with the same key);
    # 502 when the platform refused and the points came back.
    status = {"issued": 201, "pending": 202, "refunded": 502}.get(view.status.value, 200)
    return body, status


@router.get("/storefront/proxy/account")
async def proxy_account(request: Request) -> Response:
    return await _answer(request, rewards_of(request), "proxy", "account")


@router.post("/storefront/proxy/redeem")
async def proxy_redeem(request: Request) -> Response:
    return await _answer(request, rewards_of(request), "proxy", "redeem")


@router.get("/storefront/api/account")
async def api_account(request: Request) -> Response:
    return await _answer(request, rewards_of(request), "api", "account")


@router.post("/storefront/api/redeem")
async def api_redeem(request: Request) -> Response:
    return await _answer(request, rewards_of(request), "api", "redeem")


@router.options("/storefront/api/{action}")
async def api_preflight(request: Request, action: str) -> Response:
    """CORS preflight: the shop's origin only, for the methods and headers the widget uses."""
    svc = await rewards_of(request).ready()
    response = Response(status_code=204)
    if request.headers.get("origin") == _origin(svc):
        response.headers.update(
            {
                "Access-Control-Allow-Origin": _origin(svc),
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
        )
    return response
