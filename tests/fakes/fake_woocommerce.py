"""A fake WooCommerce REST API (wc/v3) for coupons, answering in the real shapes.

- HTTP Basic auth with the REST key's consumer key and secret; anything else gets 401
  ``woocommerce_rest_cannot_create`` (or ``_cannot_view`` for reads).
- ``POST /wp-json/wc/v3/coupons``: 201 with the coupon object; an existing code (any case)
  gets 400 ``woocommerce_rest_coupon_code_already_exists``; no code gets 400
  ``rest_missing_callback_param``.
- ``GET /wp-json/wc/v3/coupons?code=`` and ``GET /wp-json/wc/v3/products?sku=`` list matches.
- Faults (429 with Retry-After, 5xx, delays longer than the client's timeout) come from
  ``fail_next``; ``latency`` delays every answer.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .http_fake import FakeServer, Recorded, Reply

CONSUMER_KEY = "ck_4f3c1a6e9b0d2f7a8c5e1b3d6f9a0c2e4b7d8f1a"
CONSUMER_SECRET = "cs_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status, json.dumps(body).encode(), {"Content-Type": "application/json"} | (headers or {})
    )


def _error(status: int, code: str, message: str) -> Reply:
    return _json(status, {"code": code, "message": message, "data": {"status": status}})


class FakeWooCommerce(FakeServer):
    def __init__(self, *, latency: float = 0.0, record: bool = True) -> None:
        super().__init__(record=record, latency=latency)
        self.coupons: dict[str, dict[str, Any]] = {}  # lower-cased code: coupon
        self.products: dict[str, int] = {}  # SKU: product id
        self._ids = itertools.count(720)
        self._store_lock = threading.Lock()

    def codes(self) -> list[str]:
        with self._store_lock:
            return [c["code"] for c in self.coupons.values()]

    def handle(self, request: Recorded) -> Reply:
        expected = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            action = "create" if request.method == "POST" else "view"
            return _error(
                401, f"woocommerce_rest_cannot_{action}", f"Sorry, you cannot {action} resources."
            )
        parts = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/wp-json/wc/v3/coupons" and request.method == "POST":
            return self._create(json.loads(request.body or b"{}"))
        if parts.path == "/wp-json/wc/v3/coupons" and request.method == "GET":
            with self._store_lock:
                found = self.coupons.get(query.get("code", "").lower())
            return _json(200, [found] if found else [])
        if parts.path == "/wp-json/wc/v3/products" and request.method == "GET":
            product = self.products.get(query.get("sku", ""))
            return _json(200, [{"id": product, "sku": query["sku"]}] if product else [])
        return _error(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def _create(self, given: dict[str, Any]) -> Reply:
        code = str(given.get("code") or "")
        if not code:
            return _error(400, "rest_missing_callback_param", "Missing parameter(s): code")
        with self._store_lock:
            if code.lower() in self.coupons:
                return _error(
                    400,
                    "woocommerce_rest_coupon_code_already_exists",
                    "The coupon code already exists",
                )
            coupon = {
                "id": next(self._ids),
                "code": code.lower(),  # WooCommerce stores codes lower-cased
                "amount": given.get("amount", "0"),
                "discount_type": given.get("discount_type", "fixed_cart"),
                "description": given.get("description", ""),
                "date_expires_gmt": given.get("date_expires_gmt"),
                "usage_count": 0,
                "individual_use": given.get("individual_use", False),
                "product_ids": given.get("product_ids", []),
                "usage_limit": given.get("usage_limit"),
                "usage_limit_per_user": given.get("usage_limit_per_user"),
                "limit_usage_to_x_items": given.get("limit_usage_to_x_items"),
                "free_shipping": given.get("free_shipping", False),
                "minimum_amount": given.get("minimum_amount", "0.00"),
                "email_restrictions": given.get("email_restrictions", []),
                "used_by": [],
            }
            self.coupons[code.lower()] = coupon
        return _json(201, coupon)
