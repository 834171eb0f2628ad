"""``postpurchase preview`` renders to files and prints where they are."""

from __future__ import annotations

import json

from click.testing import CliRunner

from postpurchase.cli import main
from postpurchase.settings import PROJECT_ROOT


def test_preview_writes_email_and_sms_files(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["preview", "win_back"])

    assert result.exit_code == 0, result.output
    folder = tmp_path / "preview" / "win_back"
    assert f"wrote {folder / 'email.html'}" in result.output
    assert "segment(s), GSM-7" in result.output
    assert (folder / "email.txt").read_text().startswith("Subject: We miss you at Northwind Goods")
    assert (folder / "sms.txt").read_text().strip().endswith("Reply STOP to opt out.")


def test_preview_with_an_order_file_locale_and_channel(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path))
    order = {
        "external_id": "77",
        "name": "#77",
        "currency": "CHF",
        "total": "89.90",
        "lines": [
            {
                "external_id": "1",
                "title": "Fondue-Set Gruyère",
                "quantity": 1,
                "unit_price": "89.90",
            }
        ],
        "customer": {"external_id": "c9", "first_name": "Léon", "locale": "fr-CH"},
    }
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))

    result = CliRunner().invoke(
        main, ["preview", "delivery_checkin", "--order", str(path), "--channel", "email"]
    )

    assert result.exit_code == 0, result.output
    text = (tmp_path / "preview" / "delivery_checkin" / "email.txt").read_text()
    assert "Bonjour Léon," in text
    # an order file does not say whether a carrier reported the delivery: assumed, and said
    assert "La commande #77 devrait vous être parvenue" in text
    assert "assumed: delivery not confirmed by a carrier" in result.output
    assert not (tmp_path / "preview" / "delivery_checkin" / "sms.txt").exists()

    confirmed = CliRunner().invoke(
        main, ["preview", "delivery_checkin", "--order", str(path), "--delivery", "confirmed"]
    )
    assert confirmed.exit_code == 0, confirmed.output
    text = (tmp_path / "preview" / "delivery_checkin" / "email.txt").read_text()
    assert "La commande #77 a été livrée" in text
    assert "assumed: delivery" not in confirmed.output


def test_preview_of_a_shopify_order_as_the_webhook_sent_it(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path))
    path = PROJECT_ROOT / "tests" / "fixtures" / "shopify" / "orders_create.json"
    shopify_order = json.loads(path.read_text())

    result = CliRunner().invoke(main, ["preview", "review_request", "--order", str(path)])

    assert result.exit_code == 0, result.output
    text = (tmp_path / "preview" / "review_request" / "email.txt").read_text()
    assert shopify_order["line_items"][0]["title"] in text
    assert f"Hi {shopify_order['customer']['first_name']}," in text


def test_preview_errors_name_the_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"external_id": "1", "currency": "euro"}))

    unknown = CliRunner().invoke(main, ["preview", "black_friday"])
    invalid = CliRunner().invoke(main, ["preview", "review_request", "--order", str(bad)])

    assert unknown.exit_code == 2
    assert "no email/sms templates for 'black_friday'" in unknown.output
    assert "known: delivery_checkin" in unknown.output
    assert invalid.exit_code == 2
    assert f"{bad}: not an order: currency:" in invalid.output


def _order_file(tmp_path, **changes):
    order = {
        "external_id": "1030",
        "name": "#1030",
        "currency": "USD",
        "subtotal": "129.00",
        "total": "129.00",
        "placed_at": "2026-11-28T16:20:00Z",
        "lines": [
            {"external_id": "1", "title": "Linen Apron", "quantity": 1, "unit_price": "129.00"}
        ],
        "customer": {
            "external_id": "c-301",
            "first_name": "Noah",
            "email": "noah@example.net",
            "locale": "en",
            "time_zone": "America/Toronto",
        },
    } | changes
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))
    return path


def test_preview_of_an_order_uses_its_own_customer_and_the_real_points(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path))
    path = _order_file(tmp_path)

    result = CliRunner().invoke(main, ["preview", "points_earned", "--order", str(path)])

    assert result.exit_code == 0, result.output
    text = (tmp_path / "preview" / "points_earned" / "email.txt").read_text()
    # config/loyalty.yaml: 1 point per USD of subtotal, +100 on a first order, no tier yet
    assert text.startswith("Subject: You earned 229 points with order #1030")
    assert "Hi Noah," in text and "Your balance: 229 points." in text
    assert "Amélie" not in text and "129 points" not in text and "1840" not in text
    assert "assumed: points earned: 229 (base 129, first_order +100)" in result.output
    assert "assumed: balance 229 points, no tier yet: a new customer" in result.output


def test_preview_of_an_order_that_earns_nothing_says_so_and_invents_no_one(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path))
    # A CAD order in a USD shop, from an app that sent no customer data.
    path = _order_file(tmp_path, currency="CAD", customer=None)

    result = CliRunner().invoke(main, ["preview", "points_earned", "--order", str(path)])

    assert result.exit_code == 0, result.output
    text = (tmp_path / "preview" / "points_earned" / "email.txt").read_text()
    assert "+0 points" in text and "+129" not in text
    assert "Hello," in text and "Amélie" not in text and "Durand" not in text
    assert "assumed: the order names no customer" in result.output
    assert "points earned: 0, the order earns nothing (CAD is not the shop's currency (USD))" in (
        result.output
    )
    assert "time zone: the shop's" in result.output
    assert (
        "note: points_earned would send nothing for this order "
        "(condition not met: order.points_earned > 0)" in result.output
    )
    assert "delivery" not in result.output  # the points email does not speak of delivery


def test_preview_as_one_shop_uses_its_brand_and_its_campaign_overrides(tmp_path, monkeypatch):
    campaigns = (PROJECT_ROOT / "config" / "campaigns.yaml").read_text()
    campaigns += (
        "shops:\n"
        '  "https://northwind-goods.fr/":\n'
        "    campaigns:\n"
        "      win_back: {template: points_expiring}\n"
    )
    (tmp_path / "campaigns.yaml").write_text(campaigns)
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("POSTPURCHASE_CAMPAIGNS_FILE", str(tmp_path / "campaigns.yaml"))
    monkeypatch.setenv("POSTPURCHASE_SHOPS_FILE", str(PROJECT_ROOT / "config/shops.example.yaml"))
    result = CliRunner().invoke(
        main, ["preview", "win_back", "--shop", "https://Northwind-Goods.fr/", "--channel", "email"]
    )

    assert result.exit_code == 0, result.output
    text = (tmp_path / "preview" / "win_back" / "email.txt").read_text()
    assert "Northwind France SAS, 8 rue du Port, 44000 Nantes, France" in text
    assert "Northwind Goods" not in text
    # the shop's template for the campaign: the points-expiring message
    assert "points" in text.splitlines()[0].lower()
