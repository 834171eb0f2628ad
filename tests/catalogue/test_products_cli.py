"""``postpurchase products status|lookup`` on the test database."""

from __future__ import annotations

import json

from click.testing import CliRunner
from fake_platform_apis import SHOPIFY_TOKEN, FakeShopifyAdmin
from genuine_payloads import IPOD, ORDER, genuine

from postpurchase.cli import main
from tests.webhooks.deliveries import SHOP


def test_status_then_lookup_through_the_admin_api(send, drain, monkeypatch):
    send.shopify("products/create", genuine("shopify/products_create_docs.json"))
    send.shopify("orders/paid", ORDER)  # names product 632910392, never described
    drain()
    runner = CliRunner()

    status = runner.invoke(main, ["products", "status"])
    assert status.exit_code == 0, status.output
    assert status.output == "shopify: 1 described (0 deleted), 1 unknown\n"

    without = runner.invoke(main, ["products", "lookup"])
    assert "1 unknown without API credentials" in without.output

    fake = FakeShopifyAdmin({"632910392": {"product": IPOD}}).start()
    try:
        monkeypatch.setenv("POSTPURCHASE_SHOPIFY_SHOP", fake.url)
        monkeypatch.setenv("POSTPURCHASE_SHOPIFY_ADMIN_TOKEN", SHOPIFY_TOKEN)
        found = runner.invoke(main, ["products", "lookup", "--limit", "10"])
    finally:
        fake.stop()
    assert found.exit_code == 0, found.output
    assert found.output.startswith("products looked up: 1 found")
    assert runner.invoke(main, ["products", "status"]).output == (
        "shopify: 2 described (0 deleted), 0 unknown\n"
    )


def test_the_timeline_reads_products_from_the_catalogue(
    send, drain, campaigns_with, tmp_path, monkeypatch
):
    campaigns_with(setup_tips='"cult products" in order.product_types')  # tmp_path/campaigns.yaml
    monkeypatch.setenv("POSTPURCHASE_CAMPAIGNS_FILE", str(tmp_path / "campaigns.yaml"))
    order = tmp_path / "order.json"
    order.write_text(json.dumps(ORDER))
    args = ["campaigns", "timeline", str(order), "--delivered-at", "2026-11-23T20:42:00Z"]
    args += ["--shop", SHOP]  # the shop the product webhook comes from

    before = CliRunner().invoke(main, args)
    send.shopify("products/update", IPOD)
    drain()
    after = CliRunner().invoke(main, args)

    assert before.exit_code == 0 and after.exit_code == 0, before.output + after.output
    assert "products: 0 of 1 known to the catalogue" in before.output
    assert "setup_tips skipped: condition not met" in " ".join(before.output.split())
    assert "products: 1 of 1 known to the catalogue" in after.output
    lines = [" ".join(line.split()) for line in after.output.splitlines()]
    assert "setup_tips 2026-11-26 15:42 EST email first" in lines, after.output
