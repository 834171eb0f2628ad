"""Single-use coupons through the WooCommerce REST API (``POST /wp-json/wc/v3/coupons``).

Each coupon is for one email (``email_restrictions``), one use (``usage_limit`` and
``usage_limit_per_user`` 1) and expires with the reward. A free product is the product (found
by SKU, once per process) at 100% off, for one item. Authentication is the REST key's
consumer key and secret as HTTP Basic auth (HTTPS only in production).

Refusals are JSON ``{"code": "woocommerce_rest_...", "message": ..., "data": {"status": N}}``;
an existing code is ``woocommerce_rest_coupon_code_already_exists``.
"""

from __future__ import annotations

import base64
import threading
from decimal import Decimal
from typing import Any

from postpurchase.exceptions import PermanentProviderError
from postpurchase.loyalty.reward_catalogue import RewardKind
from postpurchase.rewards.platforms import CodeRequest, CodeTaken, IssuedCode, PlatformApi

_ALREADY_EXISTS = "woocommerce_rest_coupon_code_already_exists"


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class WooCommerceCoupons:
    """A CodeIssuer for one WooCommerce site (``site_url`` is the WordPress root)."""

    platform = "woocommerce"

    def __init__(
        self, site_url: str, consumer_key: str, consumer_secret: str, *, timeout: float = 10.0
    ) -> None:
        self.base = site_url.rstrip("/") + "/wp-json/wc/v3"
        # HTTP Basic with the REST key, as WooCommerce takes it over HTTPS.
        basic = base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
        self._api = PlatformApi(
            {"Authorization": f"Basic {basic}", "Accept": "application/json"},
            timeout=timeout,
        )
        self._products: dict[str, int] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._api.close()

    def _product_for(self, sku: str) -> int:
        with self._lock:
            known = self._products.get(sku)
        if known:
            return known
        response = self._api.send(
            "GET",
            f"{self.base}/products",
            f"WooCommerce product for SKU {sku}",
            params={"sku": sku},
        )
        found = response.json() if response.status_code == 200 else []
        if not found:
            raise PermanentProviderError(f"WooCommerce has no product with SKU {sku!r}")
        with self._lock:
            self._products[sku] = int(found[0]["id"])
        return int(found[0]["id"])

    def _body(self, request: CodeRequest) -> dict[str, Any]:
        reward = request.reward
        if not request.customer_email:
            raise PermanentProviderError("a WooCommerce coupon needs the customer's email")
        body: dict[str, Any] = {
            "code": request.code,
            "description": request.title,
            "individual_use": False,
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "email_restrictions": [request.customer_email],
            # WooCommerce reads a date without offset; the _gmt field is taken as UTC.
            "date_expires_gmt": request.ends_at.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if reward.min_order:
            body["minimum_amount"] = _money(reward.min_order)
        if reward.kind is RewardKind.AMOUNT_OFF:
            assert reward.amount is not None  # checked by the catalogue
            body |= {"discount_type": "fixed_cart", "amount": _money(reward.amount)}
        elif reward.kind is RewardKind.PERCENT_OFF:
            assert reward.percent is not None
            body |= {"discount_type": "percent", "amount": _money(reward.percent)}
        elif reward.kind is RewardKind.FREE_SHIPPING:
            body |= {"discount_type": "fixed_cart", "amount": "0", "free_shipping": True}
        else:
            assert reward.sku is not None
            body |= {
                "discount_type": "percent",
                "amount": "100",
                "product_ids": [self._product_for(reward.sku)],
                "limit_usage_to_x_items": 1,
            }
        return body

    def create(self, request: CodeRequest) -> IssuedCode:
        what = f"WooCommerce coupon {request.code}"
        response = self._api.send("POST", f"{self.base}/coupons", what, json=self._body(request))
        if response.status_code in (200, 201):
            return IssuedCode(request.code, str(response.json()["id"]))
        try:
            error = response.json()
        except ValueError:
            error = {}
        if error.get("code") == _ALREADY_EXISTS:
            raise CodeTaken(f"{what}: the code exists already")
        raise PermanentProviderError(
            f"{what}: refused ({response.status_code}): "
            f"{error.get('code', '')} {error.get('message', response.text[:200])}"
        )

    def find(self, code: str) -> IssuedCode | None:
        response = self._api.send(
            "GET", f"{self.base}/coupons", f"WooCommerce find {code}", params={"code": code}
        )
        if response.status_code != 200:
            raise PermanentProviderError(f"WooCommerce find {code}: {response.status_code}")
        # The code filter matches exactly, but compare anyway: codes are case-insensitive.
        for coupon in response.json():
            if str(coupon.get("code", "")).lower() == code.lower():
                return IssuedCode(code, str(coupon["id"]))
        return None
