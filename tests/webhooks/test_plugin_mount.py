"""The webhook app as Airflow serves it: mounted by the plugin at /postpurchase."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from deliveries import SHOP, SHOPIFY_SECRET, fixture_bytes, inbox_rows
from servers import free_port, stop, wait_until_healthy

from postpurchase.webhooks.signatures import base64_digest


@pytest.mark.slow
@pytest.mark.airflow
def test_signed_webhook_through_airflows_api_server_lands_in_the_inbox(
    airflow_db, db_url, store, tmp_path: Path
):
    port = free_port()
    env = {**os.environ, "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET}
    assert env["POSTPURCHASE_DATABASE_URL"] == db_url  # the engine's DB, never Airflow's
    log = tmp_path / "api-server.log"
    airflow = str(Path(sys.executable).with_name("airflow"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}/postpurchase"
    try:
        wait_until_healthy(f"{base}/webhooks/health", process, log, timeout=120)
        body = fixture_bytes("shopify/orders_create.json")
        response = httpx.post(
            f"{base}/webhooks/shopify",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": base64_digest(body, SHOPIFY_SECRET),
                "X-Shopify-Shop-Domain": SHOP,
                "X-Shopify-Webhook-Id": "0f3a6c1e-62a4-4c55-a3f1-2a0d1cc8b7a2",
            },
            timeout=30,
        )
        unsigned = httpx.post(
            f"{base}/webhooks/shopify",
            content=body,
            headers={"Content-Type": "application/json", "X-Shopify-Topic": "orders/create"},
            timeout=30,
        )
    finally:
        stop(process)

    assert response.status_code == 202, response.text
    assert unsigned.status_code == 401  # Airflow adds no auth in front: the app checks itself
    [row] = inbox_rows(store)
    assert (row.id, row.event_type, row.shop) == (
        response.json()["event_id"],
        "order.placed",
        SHOP,
    )
