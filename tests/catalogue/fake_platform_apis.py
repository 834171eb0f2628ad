"""Fake Shopify Admin and WooCommerce REST APIs on 127.0.0.1 answering as the real ones do.

- Shopify: ``GET /admin/api/<version>/products/<id>.json`` with ``X-Shopify-Access-Token``:
  200 ``{"product": ...}`` for the products it holds, 404 ``{"errors": "Not Found"}``, 401
  ``{"errors": "[API] Invalid API key or access token ..."}`` on a wrong token.
- WooCommerce: ``GET /wp-json/wc/v3/products/<id>`` with HTTP Basic consumer key/secret:
  200 with the product, 404 ``woocommerce_rest_product_invalid_id``, 401
  ``woocommerce_rest_cannot_view``.

Faults (429 with Retry-After, 5xx, delays) come from ``fail_next``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from fakes.http_fake import FakeServer, Fault, Recorded, Reply

SHOPIFY_TOKEN = "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"
WOO_KEY = "ck_4f1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5"
WOO_SECRET = "cs_9e8d7c6b5a4938271605f4e3d2c1b0a9f8e7d6c5"
_JSON = {"Content-Type": "application/json; charset=utf-8"}


def _reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), {**_JSON, **(headers or {})})


def rate_limited(retry_after: str = "2.0") -> Fault:
    """Shopify's answer over its REST rate limit (Retry-After in seconds)."""
    body = json.dumps(
        {
            "errors": "Exceeded 2 calls per second for api client. "
            "Reduce request rates to resume uninterrupted service."
        }
    ).encode()
    return Fault(429, body, {**_JSON, "Retry-After": retry_after})


class FakeShopifyAdmin(FakeServer):
    def __init__(self, products: dict[str, Any], *, token: str = SHOPIFY_TOKEN) -> None:
        super().__init__()
        self.products = products  # product id: the Admin API's {"product": ...} document
        self.token = token

    def handle(self, request: Recorded) -> Reply:
        if request.headers.get("X-Shopify-Access-Token") != self.token:
            return _reply(
                401,
                {
                    "errors": "[API] Invalid API key or access token "
                    "(unrecognized login or wrong password)"
                },
            )
        match = re.fullmatch(r"/admin/api/[0-9]{4}-[0-9]{2}/products/([0-9]+)\.json", request.path)
        if match is None or match.group(1) not in self.products:
            return _reply(404, {"errors": "Not Found"})
        return _reply(200, self.products[match.group(1)])


class FakeWooCommerce(FakeServer):
    def __init__(self, products: dict[str, Any]) -> None:
        super().__init__()
        self.products = products

    def handle(self, request: Recorded) -> Reply:
        expected = base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _reply(
                401,
                {
                    "code": "woocommerce_rest_cannot_view",
                    "message": "Sorry, you cannot view this resource.",
                    "data": {"status": 401},
                },
            )
        match = re.fullmatch(r"/wp-json/wc/v3/products/([0-9]+)", request.path)
        if match is None or match.group(1) not in self.products:
            return _reply(
                404,
                {
                    "code": "woocommerce_rest_product_invalid_id",
                    "message": "Invalid ID.",
                    "data": {"status": 404},
                },
            )
        return _reply(200, self.products[match.group(1)])
