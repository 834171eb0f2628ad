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
    assert "La commande #77 a été livrée" in text
    assert not (tmp_path / "preview" / "delivery_checkin" / "sms.txt").exists()


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
