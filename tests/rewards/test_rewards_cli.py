"""``postpurchase loyalty redeem|rewards|import-codes`` with the shipped catalogue."""

from __future__ import annotations

from click.testing import CliRunner
from fakes.fake_shopify_admin import ACCESS_TOKEN

from postpurchase.cli import main


def _run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_pool_codes_redeemed_from_the_command_line(store, customer_with, tmp_path):
    customer_with(700)  # shopify:7208815100001, grace.hopper1@example.com
    csv_file = tmp_path / "codes.csv"
    csv_file.write_text("code,value\nPOS5-7QK2\nPOS5-M3XD\nPOS5-7QK2\n")
    imported = _run("loyalty", "import-codes", "five_off", str(csv_file))
    assert imported.exit_code == 0, imported.output
    assert "2 code(s) added, 1 already there; 2 free" in imported.output

    listed = _run("loyalty", "rewards", "grace.hopper1@example.com")
    assert listed.exit_code == 0, listed.output
    assert "700 points, tier Bronze" in listed.output
    assert "next tier Silver: spend 250.00 USD more" in listed.output
    assert "five_off" in listed.output and "[can redeem]" in listed.output
    assert "free_tote" in listed.output and "[needs 800 more]" in listed.output
    assert "vip_early_access" not in listed.output  # Gold and VIP only
    assert "referral code REF-" in listed.output

    spent = _run("loyalty", "redeem", "7208815100001", "five_off", "--key", "desk-1")
    assert spent.exit_code == 0, spent.output
    assert "five_off: code POS5-7QK2" in spent.output and "balance 200 points" in spent.output
    again = _run("loyalty", "redeem", "7208815100001", "five_off", "--key", "desk-1")
    assert "code POS5-7QK2" in again.output and "balance 200 points" in again.output

    short = _run("loyalty", "redeem", "7208815100001", "five_off")
    assert short.exit_code == 2 and "costs 500 points; balance is 200" in short.output
    shown = _run("loyalty", "rewards", "7208815100001")
    assert "code POS5-7QK2" in shown.output and "issued" in shown.output


def test_redeem_on_shopify_from_settings(store, customer_with, shopify, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_REWARDS_PLATFORM", "shopify")
    monkeypatch.setenv("POSTPURCHASE_SHOPIFY_SHOP_DOMAIN", "northwind.myshopify.com")
    monkeypatch.setenv("POSTPURCHASE_SHOPIFY_ADMIN_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("POSTPURCHASE_SHOPIFY_ADMIN_URL", shopify.url)
    customer_with(350)
    spent = _run("loyalty", "redeem", "grace.hopper1@example.com", "free_shipping")
    assert spent.exit_code == 0, spent.output
    assert shopify.codes() and f"code {shopify.codes()[0]}" in spent.output
    assert "balance 50 points" in spent.output


def test_a_platform_without_credentials_is_a_config_error(store, customer_with, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_REWARDS_PLATFORM", "woocommerce")
    customer_with(350)
    failed = _run("loyalty", "redeem", "grace.hopper1@example.com", "free_shipping")
    assert failed.exit_code != 0 and "POSTPURCHASE_WOOCOMMERCE_URL" in failed.output
