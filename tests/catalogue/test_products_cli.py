"""``postpurchase products status|lookup`` on the test database."""

from __future__ import annotations

from click.testing import CliRunner
from fake_platform_apis import SHOPIFY_TOKEN, FakeShopifyAdmin
from genuine_payloads import IPOD, ORDER, genuine

from postpurchase.cli import main


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
