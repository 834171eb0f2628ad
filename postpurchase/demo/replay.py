"""Replaying a recorded feed of webhooks over HTTP, signed as the platform signs them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from postpurchase.exceptions import InvalidInput
from postpurchase.webhooks.signatures import base64_digest


def read_feed(path: Path) -> list[dict[str, Any]]:
    """The deliveries in a JSON-lines feed; a bad line raises InvalidInput with file:line."""
    deliveries = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                delivery = json.loads(line)
                if delivery["platform"] != "shopify":
                    raise InvalidInput(f"{path}:{number}: only shopify deliveries can be replayed")
                delivery["body"], delivery["topic"]  # noqa: B018 - both are required
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{path}:{number}: not a feed delivery ({exc})") from None
            deliveries.append(delivery)
    return deliveries


def shopify_request(delivery: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers Shopify would send for ``delivery``."""
    body = json.dumps(delivery["body"], ensure_ascii=False).encode()
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": delivery["topic"],
        "X-Shopify-Hmac-Sha256": base64_digest(body, secret),
        "X-Shopify-Shop-Domain": delivery.get("shop", ""),
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": delivery["webhook_id"],
        "X-Shopify-Event-Id": delivery["event_id"],
        "X-Shopify-Triggered-At": delivery["triggered_at"],
    }


def replay(
    deliveries: Iterable[dict[str, Any]],
    *,
    url: str,
    secret: str,
    concurrency: int = 8,
    on_done: Callable[[int], None] = lambda status: None,
) -> Counter[int]:
    """POST every delivery to ``url`` and count the answers by HTTP status.

    Requests go in feed order, ``concurrency`` at a time; ``on_done`` is called after each
    answer (progress display). Connection failures count as status 0.
    """
    counts: Counter[int] = Counter()
    with httpx.Client(timeout=30) as client:

        def post(delivery: dict[str, Any]) -> int:
            body, headers = shopify_request(delivery, secret)
            try:
                status = client.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 0
            on_done(status)
            return status

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            counts.update(pool.map(post, deliveries))
    return counts
