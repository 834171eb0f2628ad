"""Single-use discount codes through Shopify's Admin GraphQL API (scope ``write_discounts``).

Amount and percent off and free products use ``discountCodeBasicCreate``, free shipping
``discountCodeFreeShippingCreate``; every code is limited to the one customer (``context``),
one use (``usageLimit: 1``, ``appliesOncePerCustomer``), and ends when the reward's validity
does. A free product is the product's variant (found by SKU, once per process) at 100% off.

GraphQL answers 200 with ``userErrors`` for refused input (code ``TAKEN`` for a code that
exists) and with a top-level ``errors`` entry ``THROTTLED`` when the cost bucket is empty.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from postpurchase.exceptions import PermanentProviderError, TransientProviderError
from postpurchase.loyalty.reward_catalogue import RewardKind
from postpurchase.rewards.platforms import CodeRequest, CodeTaken, IssuedCode, PlatformApi

DEFAULT_API_VERSION = "2025-10"

_RESULT = "codeDiscountNode { id } userErrors { field code message }"
_BASIC = (
    "mutation Create($input: DiscountCodeBasicInput!) "
    f"{{ discountCodeBasicCreate(basicCodeDiscount: $input) {{ {_RESULT} }} }}"
)
_FREE_SHIPPING = (
    "mutation Create($input: DiscountCodeFreeShippingInput!) "
    f"{{ discountCodeFreeShippingCreate(freeShippingCodeDiscount: $input) {{ {_RESULT} }} }}"
)
_BY_CODE = "query Find($code: String!) { codeDiscountNodeByCode(code: $code) { id } }"
_VARIANT_BY_SKU = (
    "query Variant($q: String!) { productVariants(first: 1, query: $q) { nodes { id } } }"
)


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class ShopifyDiscounts:
    """A CodeIssuer for one shop. ``admin_url`` replaces ``https://<shop>`` (a test double)."""

    platform = "shopify"

    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        *,
        api_version: str = DEFAULT_API_VERSION,
        admin_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        base = (admin_url or f"https://{shop_domain}").rstrip("/")
        self.url = f"{base}/admin/api/{api_version}/graphql.json"
        self._api = PlatformApi(
            {"X-Shopify-Access-Token": access_token, "Accept": "application/json"},
            timeout=timeout,
        )
        self._variants: dict[str, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._api.close()

    def _call(self, query: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        response = self._api.send(
            "POST", self.url, what, json={"query": query, "variables": variables}
        )
        if response.status_code != 200:
            raise PermanentProviderError(
                f"{what}: Shopify answered {response.status_code}: {response.text[:200]}"
            )
        body = response.json()
        errors = body.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            raise TransientProviderError(f"{what}: throttled", retry_after=_throttle_wait(body))
        if errors:
            messages = "; ".join(str(e.get("message")) for e in errors)
            raise PermanentProviderError(f"{what}: {messages}")
        data: dict[str, Any] = body.get("data") or {}
        return data

    def _variant_for(self, sku: str) -> str:
        with self._lock:
            known = self._variants.get(sku)
        if known:
            return known
        data = self._call(_VARIANT_BY_SKU, {"q": f"sku:{sku!r}"}, f"variant for SKU {sku}")
        nodes = ((data.get("productVariants") or {}).get("nodes")) or []
        if not nodes:
            raise PermanentProviderError(f"Shopify has no product variant with SKU {sku!r}")
        with self._lock:
            self._variants[sku] = nodes[0]["id"]
        return str(nodes[0]["id"])

    def _input(self, request: CodeRequest) -> tuple[str, str, dict[str, Any]]:
        reward = request.reward
        if not request.customer_platform_id:
            raise PermanentProviderError("a Shopify code needs the customer's Shopify id")
        common: dict[str, Any] = {
            "title": request.title,
            "code": request.code,
            "startsAt": request.starts_at.isoformat(),
            "endsAt": request.ends_at.isoformat(),
            "context": {
                "customers": {"add": [f"gid://shopify/Customer/{request.customer_platform_id}"]}
            },
            "usageLimit": 1,
            "appliesOncePerCustomer": True,
        }
        if reward.min_order:
            common["minimumRequirement"] = {
                "subtotal": {"greaterThanOrEqualToSubtotal": _money(reward.min_order)}
            }
        if reward.kind is RewardKind.FREE_SHIPPING:
            common["destination"] = {"all": True}
            return _FREE_SHIPPING, "discountCodeFreeShippingCreate", common
        items: dict[str, Any] = {"all": True}
        if reward.kind is RewardKind.AMOUNT_OFF:
            assert reward.amount is not None  # checked by the catalogue
            value: dict[str, Any] = {
                "discountAmount": {"amount": _money(reward.amount), "appliesOnEachItem": False}
            }
        elif reward.kind is RewardKind.PERCENT_OFF:
            assert reward.percent is not None
            value = {"percentage": float(reward.percent / 100)}
        else:
            assert reward.sku is not None
            value = {"percentage": 1.0}
            items = {"products": {"productVariantsToAdd": [self._variant_for(reward.sku)]}}
        common["customerGets"] = {"value": value, "items": items}
        return _BASIC, "discountCodeBasicCreate", common

    def create(self, request: CodeRequest) -> IssuedCode:
        query, field, variables = self._input(request)
        what = f"Shopify {field} {request.code}"
        result = self._call(query, {"input": variables}, what).get(field) or {}
        user_errors = result.get("userErrors") or []
        if any(e.get("code") == "TAKEN" for e in user_errors):
            raise CodeTaken(f"{what}: the code exists already")
        if user_errors:
            messages = "; ".join(
                f"{'.'.join(e.get('field') or [])}: {e.get('message')}" for e in user_errors
            )
            raise PermanentProviderError(f"{what}: refused: {messages}")
        node = result.get("codeDiscountNode") or {}
        if not node.get("id"):
            raise PermanentProviderError(f"{what}: no discount in the answer")
        return IssuedCode(request.code, str(node["id"]))

    def find(self, code: str) -> IssuedCode | None:
        data = self._call(_BY_CODE, {"code": code}, f"Shopify find {code}")
        node = data.get("codeDiscountNodeByCode")
        return IssuedCode(code, str(node["id"])) if node and node.get("id") else None


def _throttle_wait(body: dict[str, Any]) -> float | None:
    """Seconds until the cost bucket holds the query's cost again (None when not said)."""
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost.get("requestedQueryCost", 0)) - float(status["currentlyAvailable"])
        return max(0.0, needed / float(status["restoreRate"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
