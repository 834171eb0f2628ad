"""Many deliveries of one event at once, against a real server: exactly one inbox row."""

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deliveries import GENERIC_SECRET, SHOP, SHOPIFY_SECRET, WOO_SECRET, fixture_bytes, inbox_rows
from servers import free_port, start_serve, stop, wait_until_healthy

from postpurchase.webhooks.signatures import base64_digest

DELIVERIES = 500


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[str]:
    """``postpurchase serve`` with two workers on a free loopback port; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "POSTPURCHASE_DATABASE_URL": db_url,
        "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET,
        "POSTPURCHASE_WOOCOMMERCE_WEBHOOK_SECRET": WOO_SECRET,
        "POSTPURCHASE_WEBHOOK_SECRET": GENERIC_SECRET,
        # PostgreSQL: serve refuses to start without the shared link-signing secret.
        "POSTPURCHASE_SIGNING_SECRET": "link-signing-secret-for-tests-0123456789",
    }
    log = tmp_path / "serve.log"
    process = start_serve(port, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/webhooks/health", process, log, timeout=60)
        yield base
    finally:
        stop(process)


async def _deliver_at_once(base: str, body: bytes, headers: dict[str, str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=DELIVERIES, max_keepalive_connections=DELIVERIES)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        return await asyncio.gather(
            *(
                client.post("/webhooks/shopify", content=body, headers=headers)
                for _ in range(DELIVERIES)
            )
        )


@pytest.mark.slow
def test_concurrent_deliveries_of_one_event_store_exactly_one_row(served, store):
    body = fixture_bytes("shopify/orders_create.json")
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Hmac-Sha256": base64_digest(body, SHOPIFY_SECRET),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    }
    responses = asyncio.run(_deliver_at_once(served, body, headers))

    answers = Counter((r.status_code, r.json()["status"]) for r in responses)
    assert answers == {(202, "accepted"): 1, (200, "duplicate"): DELIVERIES - 1}
    [row] = inbox_rows(store)
    assert row.event_type == "order.paid"
    accepted = next(r for r in responses if r.status_code == 202)
    assert accepted.json()["event_id"] == row.id
