"""The embedded demo: a realistic, reproducible feed, and `postpurchase run` end to end."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from servers import free_port

from postpurchase.demo.feed import build_feed, write_feed
from postpurchase.demo.replay import read_feed, shopify_request
from postpurchase.exceptions import InvalidInput
from postpurchase.settings import Settings
from postpurchase.webhooks.intake import shopify_entry
from postpurchase.webhooks.signatures import verify_base64_hmac

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

CONSENT_TOPICS = frozenset(
    {"customers_email_marketing_consent/update", "customers_marketing_consent/update"}
)


def test_the_feed_is_a_believable_month_of_a_shop_and_reproducible():
    feed = build_feed(orders=120, now=NOW)
    assert [d.to_json() for d in feed] == [d.to_json() for d in build_feed(orders=120, now=NOW)]

    topics = Counter(d.topic for d in feed)
    assert topics["orders/create"] == 120
    assert topics["orders/paid"] > 100 and topics["fulfillment_events/create"] > 60
    assert topics["refunds/create"] + topics["returns/request"] + topics["orders/cancelled"] > 0
    assert all(d.triggered_at <= NOW for d in feed)
    assert [d.triggered_at for d in feed] == sorted(d.triggered_at for d in feed)

    created = {d.body["id"]: d.body for d in feed if d.topic == "orders/create"}
    buyers = Counter(order["customer"]["id"] for order in created.values())
    assert max(buyers.values()) > 1, "no repeat customer"
    # Consent comes only through Shopify's consent topics, about customers who ordered.
    consent = [d for d in feed if d.topic in CONSENT_TOPICS]
    assert consent and all("consent" not in key for o in created.values() for key in o["customer"])
    assert {d.body.get("customer_id") or d.body.get("id") for d in consent} <= set(buyers)
    products = [d for d in feed if d.topic == "products/create"]
    assert products == feed[: len(products)], "the catalogue comes before the orders"
    sold = {line["product_id"] for order in created.values() for line in order["line_items"]}
    assert sold <= {d.body["id"] for d in products}
    # as Shopify sends them: an order's lines carry no product type
    assert not [
        line for o in created.values() for line in o["line_items"] if "product_type" in line
    ]
    for delivery in feed[len(products) :]:
        if delivery.topic in CONSENT_TOPICS:
            continue
        # every follow-up is about an order the shop created before
        order_id = delivery.body.get("order_id") or (delivery.body.get("order") or {}).get("id")
        assert delivery.body["id"] in created or order_id in created
    assert all(order["email"].isascii() for order in created.values())


GENUINE_SHOPIFY = Path(__file__).resolve().parents[1] / "fixtures" / "genuine" / "shopify"
# Fields the feed still sends that Shopify's webhooks dropped in API 2025-01, in favour of
# the consent topics; they leave the feed when consent comes from those topics.
_PENDING_CONSENT_FIELDS = {"email_marketing_consent", "sms_marketing_consent"}


def _genuine_orders() -> list[dict]:
    orders = []
    for path in GENUINE_SHOPIFY.glob("*.json"):
        body = json.loads(path.read_text())
        body = body.get("order", body)  # the Admin API's wrapped shape
        if "line_items" in body and "financial_status" in body:
            orders.append(body)
    return orders


def test_the_feed_sends_only_fields_shopify_sends():
    """Every order, line item and customer field of the feed appears in a genuine payload."""
    genuine = _genuine_orders()
    assert len(genuine) >= 3
    known_order = {key for order in genuine for key in order}
    known_line = {key for order in genuine for line in order["line_items"] for key in line}
    known_customer = {
        key for order in genuine if order.get("customer") for key in order["customer"]
    }
    feed = build_feed(orders=60, now=NOW)
    orders = [d.body for d in feed if d.topic.startswith("orders/")]
    assert orders
    for order in orders:
        assert set(order) <= known_order, set(order) - known_order
        assert order["test"] is False
        for line in order["line_items"]:
            assert set(line) <= known_line, set(line) - known_line
            assert "product_type" not in line
        customer = set(order["customer"]) - _PENDING_CONSENT_FIELDS
        assert customer <= known_customer, customer - known_customer
        assert "tags" not in order["customer"]


def test_every_delivery_of_the_feed_passes_intake(tmp_path):
    """The edge's checks (topic against body, limits, times, contacts) accept the whole feed."""
    path = tmp_path / "feed.jsonl"
    write_feed(path, build_feed(orders=120, now=NOW))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        shopify_webhook_secret=SecretStr("shpss_app_secret"),
    )
    kinds: Counter[str] = Counter()
    for delivery in read_feed(path):
        body, headers = shopify_request(delivery, "shpss_app_secret")
        entry = shopify_entry(settings, {k.lower(): v for k, v in headers.items()}, body, NOW)
        assert entry.notes == (), entry.notes
        kinds[entry.event_type] += 1
    assert "ignored" not in kinds
    assert kinds["order.placed"] == 120 and kinds["order.paid"] > 100


def test_feeds_with_different_offsets_share_no_order_or_delivery():
    first = build_feed(orders=50, now=NOW)
    second = build_feed(orders=50, now=NOW, id_offset=100_000)
    assert not {d.webhook_id for d in first} & {d.webhook_id for d in second}
    # the shop's products are the same in both; its orders and deliveries are not
    skipped = CONSENT_TOPICS | {"products/create"}
    orders = [{d.body["id"] for d in f if d.topic not in skipped} for f in (first, second)]
    assert not orders[0] & orders[1]


def test_replayed_deliveries_are_signed_as_shopify_signs_them(tmp_path):
    path = tmp_path / "feed.jsonl"
    write_feed(path, build_feed(orders=3, now=NOW))
    delivery = next(d for d in read_feed(path) if d["topic"] == "orders/create")
    body, headers = shopify_request(delivery, "shpss_app_secret")
    verify_base64_hmac(  # raises BadSignature when it does not match
        body,
        headers["X-Shopify-Hmac-Sha256"],
        "shpss_app_secret",
        header_name="X-Shopify-Hmac-Sha256",
    )
    assert headers["X-Shopify-Topic"] == "orders/create"
    assert json.loads(body) == delivery["body"]


def test_a_broken_feed_line_names_file_and_line(tmp_path):
    path = tmp_path / "feed.jsonl"
    write_feed(path, build_feed(orders=1, now=NOW))
    with path.open("a") as feed:
        feed.write("{not json\n")
    lines = len(path.read_text().splitlines())
    with pytest.raises(InvalidInput, match=rf"feed.jsonl:{lines}: not a feed delivery"):
        read_feed(path)


@pytest.mark.slow
@pytest.mark.airflow
def test_postpurchase_run_once_shows_the_whole_product_and_leaves_nothing_running(tmp_path):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "POSTPURCHASE_"))}
    env.update(POSTPURCHASE_VAR_DIR=str(var), NO_PROXY="127.0.0.1,localhost")
    postpurchase = str(Path(sys.executable).with_name("postpurchase"))
    result = subprocess.run(
        [postpurchase, "run", "--once", "--orders", "40", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for expected in (
        "answers: HTTP 202 ×",
        "events received from the platform:",
        "touchpoints: sent ",
        "points_earned (email)",
        "loyalty points awarded:",
        "customers per tier:",
        "outcomes a week later, SIMULATED",
        "uplift review_request: ",
        "Airflow UI: http://127.0.0.1:",
        "/plugin/postpurchase-health (Health, Customers, Campaigns, KPIs",
        "local Airflow stopped",
    ):
        assert expected in out, expected
    assert list((var / "outbox").glob("*.eml")), "no email in the outbox"
    with closing(sqlite3.connect(var / "airflow" / "airflow.db")) as airflow_db:
        # Airflow ran on the database the run put in WAL mode, and left it so
        assert airflow_db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        notes = dict(
            airflow_db.execute(
                "SELECT dag_run.dag_id, dag_run_note.content FROM dag_run_note "
                "JOIN dag_run ON dag_run.id = dag_run_note.dag_run_id "
                "WHERE dag_run_note.content LIKE '%processed % event(s)%'"
            ).fetchall()
        )
    assert "process_purchase_events" in notes, "no processing run carries its counts as a note"
    assert _processes_with(f"AIRFLOW_HOME={var / 'airflow'}") == []


def _processes_with(variable: str) -> list[int]:
    """Live processes whose environment has ``variable`` (NAME=value)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if variable.encode() in environ and state != "Z":
            found.append(int(proc.name))
    return found
