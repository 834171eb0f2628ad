"""Webhook test data and senders that sign like the platforms.

``send.shopify(...)`` signs the raw bytes exactly as Shopify does (base64 HMAC-SHA256 with the
app's secret) and sets the headers Shopify sets; ``send.woocommerce`` and ``send.generic`` do the
same for their routes. Each returns the httpx response.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory
from postpurchase.store.models import InboxEvent, RejectedWebhook
from postpurchase.webhooks.signatures import base64_digest, sign_generic

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHOP = "northline-outdoor.myshopify.com"
SHOPIFY_SECRET = "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"
OTHER_SHOP = "second-store.myshopify.com"
OTHER_SHOP_SECRET = "shpss_other_shop_secret_7d2e"
WOO_SECRET = "wc-secret-8Jq2nLx0"
GENERIC_SECRET = "pp-generic-secret-Zt41"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# An order.paid in the generic format, as a shop's own system posts it.
GENERIC_PAID: dict[str, Any] = {
    "id": "evt_01JD7Q",
    "shop": "tea-house.example",
    "type": "order.paid",
    "occurred_at": "2026-11-27T10:00:00+01:00",
    "order": {
        "external_id": "A-1001",
        "name": "A-1001",
        "currency": "EUR",
        "total": "59.90",
        "updated_at": "2026-11-27T10:00:00+01:00",
        "lines": [
            {"external_id": "1", "title": "Sencha 100 g", "quantity": 2, "unit_price": "12.50"},
            {"external_id": "2", "title": "Teapot", "quantity": 1, "unit_price": "34.90"},
        ],
        "customer": {"external_id": "c-77", "email": "Mia@Example.org", "sms_consent": True},
    },
}


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def intake_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "shopify_webhook_secret": SHOPIFY_SECRET,
        "shopify_webhook_secrets": {OTHER_SHOP: OTHER_SHOP_SECRET},
        "woocommerce_webhook_secret": WOO_SECRET,
        "webhook_secret": GENERIC_SECRET,
    }
    values.update(overrides)
    return Settings(**values)


class Sender:
    """Posts signed deliveries to the app (or any base URL) the way each platform does."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def shopify(
        self,
        topic: str,
        body: bytes | Any,
        *,
        shop: str = SHOP,
        secret: str = SHOPIFY_SECRET,
        event_id: str | None = None,
        webhook_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": base64_digest(raw, secret),
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-API-Version": "2025-10",
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": "2026-11-20T14:14:05.123456Z",
        }
        sent.update(headers or {})
        return self.client.post(
            "/webhooks/shopify", content=raw, headers={k: v for k, v in sent.items() if v}
        )

    def woocommerce(
        self,
        topic: str,
        body: bytes | Any,
        *,
        webhook_id: str = "14",
        secret: str = WOO_SECRET,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        resource, _, event = topic.partition(".")
        sent = {
            "Content-Type": "application/json",
            "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7)",
            "X-WC-Webhook-Source": "https://shop.example.de/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": base64_digest(raw, secret),
            "X-WC-Webhook-ID": webhook_id,
            "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
        }
        sent.update(headers or {})
        return self.client.post(
            "/webhooks/woocommerce", content=raw, headers={k: v for k, v in sent.items() if v}
        )

    def generic(
        self,
        body: bytes | Any,
        *,
        secret: str = GENERIC_SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {
            "Content-Type": "application/json",
            "X-Postpurchase-Signature": sign_generic(
                raw, secret, int(time.time()) if timestamp is None else timestamp
            ),
        }
        sent.update(headers or {})
        return self.client.post(
            "/webhooks/events", content=raw, headers={k: v for k, v in sent.items() if v}
        )


def inbox_rows(store: SessionFactory) -> list[InboxEvent]:
    with store() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def rejected_rows(store: SessionFactory) -> list[RejectedWebhook]:
    with store() as session:
        return list(session.scalars(select(RejectedWebhook).order_by(RejectedWebhook.id)))
