"""``postpurchase campaigns``: validate, timeline and replan, as marketing runs them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from postpurchase.cli import main
from postpurchase.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "config" / "campaigns.yaml"
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"

ORDER = {
    "external_id": "1001",
    "name": "#1001",
    "currency": "USD",
    "total": "249.00",
    "financial_status": "paid",
    "placed_at": "2026-03-01T15:00:00Z",
    "lines": [
        {
            "external_id": "l1",
            "title": "Smart speaker",
            "product_type": "electronics",
            "quantity": 1,
            "unit_price": "249.00",
        }
    ],
    "customer": {"external_id": "c1", "email": "mara@example.com", "time_zone": "America/New_York"},
}


def test_validate_accepts_the_shipped_campaigns():
    result = CliRunner().invoke(main, ["campaigns", "validate"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("campaigns.yaml: valid")


def test_validate_checks_the_shops_file_too(tmp_path, monkeypatch):
    shops = tmp_path / "shops.yaml"
    example = (PROJECT_ROOT / "config" / "shops.example.yaml").read_text()
    monkeypatch.setenv("POSTPURCHASE_SHOPS_FILE", str(shops))
    shops.write_text(example)
    result = CliRunner().invoke(main, ["campaigns", "validate"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"{shops}: valid")

    shops.write_text(example.replace("time_zone: Europe/Oslo", "time_zone: Europe/Olso"))
    line = (
        example.splitlines().index(
            "    time_zone: Europe/Oslo   # customers without a zone "
            "of their own: windows, quiet hours"
        )
        + 1
    )
    result = CliRunner().invoke(main, ["campaigns", "validate"])
    assert result.exit_code == 1
    assert f"{shops}:{line}: time_zone: unknown time zone 'Europe/Olso'" in result.output


def test_validate_lists_every_problem_and_fails(tmp_path):
    broken = tmp_path / "campaigns.yaml"
    text = (
        SHIPPED.read_text()
        .replace("delay: 1d", "delay: tomorrow")
        .replace("[email, sms]", "[email, fax]", 1)
    )
    broken.write_text(text)
    source = text.splitlines()
    delay_line = source.index("    delay: tomorrow") + 1
    channels_line = source.index("    channels: [email, fax]") + 1

    result = CliRunner().invoke(main, ["campaigns", "validate", str(broken)])

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{broken}:{delay_line}: delay: 'tomorrow' is not a duration")
    assert lines[1].startswith(
        f"{broken}:{channels_line}: channels[1]: Input should be 'email' or 'sms'"
    )


def test_timeline_shows_local_due_times_and_reasons(tmp_path):
    order = tmp_path / "order.json"
    order.write_text(json.dumps(ORDER))

    result = CliRunner().invoke(
        main,
        ["campaigns", "timeline", str(order), "--delivered-at", "2026-03-06T17:00:00+00:00"],
    )

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert "delivery_checkin 2026-03-07 12:00 EST email first" in lines
    assert "review_request 2026-03-18 12:00 EDT email reminder 1" in lines
    assert "points_earned 2026-03-01 10:05 EST email first" in lines
    assert "vip_welcome skipped: starts from a tier change, not an order" in lines


def test_timeline_explains_an_order_that_gets_nothing(tmp_path):
    order = tmp_path / "order.json"
    order.write_text(
        json.dumps(dict(ORDER, financial_status="pending", cancelled_at="2026-03-02T09:00:00Z"))
    )

    result = CliRunner().invoke(main, ["campaigns", "timeline", str(order)])

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert "review_request skipped: waits for order.delivered" in lines
    assert "points_earned skipped: waits for order.paid" in lines


def test_timeline_refuses_a_file_that_is_not_an_order(tmp_path):
    order = tmp_path / "order.json"
    order.write_text('{"id": 1}')
    result = CliRunner().invoke(main, ["campaigns", "timeline", str(order)])
    assert result.exit_code == 2
    assert "not an order: external_id: Field required" in result.output


def _timeline(tmp_path, document, *args):
    order = tmp_path / "order.json"
    order.write_text(json.dumps(document))
    result = CliRunner().invoke(main, ["campaigns", "timeline", str(order), *args])
    assert result.exit_code == 0, result.output
    return [" ".join(line.split()) for line in result.output.splitlines()]


def test_timeline_reads_a_shopify_order_as_shopify_sends_it_or_the_admin_api_wraps_it(tmp_path):
    shopify_order = json.loads((FIXTURES / "shopify" / "orders_create.json").read_text())

    as_webhook = _timeline(tmp_path, shopify_order, "--delivered-at", "2026-03-06T17:00:00Z")
    from_admin_api = _timeline(
        tmp_path, {"order": shopify_order}, "--delivered-at", "2026-03-06T17:00:00Z"
    )

    assert as_webhook[0] == f"{shopify_order['name']}, read as a Shopify order"
    assert from_admin_api == as_webhook
    assert any(line.startswith("delivery_checkin 2026-03-07") for line in as_webhook)


def test_timeline_reads_a_woocommerce_order_and_a_generic_event(tmp_path):
    woo_order = json.loads((FIXTURES / "woocommerce" / "order_processing.json").read_text())
    generic = {"type": "order.placed", "occurred_at": ORDER["placed_at"], "order": ORDER}

    woo = _timeline(tmp_path, woo_order)
    event = _timeline(tmp_path, generic, "--delivered-at", "2026-03-06T17:00:00+00:00")

    assert woo[0] == f"#{woo_order['number']}, read as a WooCommerce order"
    # "processing" is WooCommerce's paid, but this shop counts in USD: a EUR order earns no
    # points, so no points email; the same order in USD gets it five minutes after payment
    assert "points_earned skipped: condition not met: order.points_earned > 0" in woo
    in_usd = _timeline(tmp_path, woo_order | {"currency": "USD"})
    assert any(line.startswith("points_earned 2026-") for line in in_usd), in_usd
    assert event[0] == "#1001, read as a generic event"
    assert "delivery_checkin 2026-03-07 12:00 EST email first" in event


def test_timeline_of_a_partly_refunded_woocommerce_order_plans_no_review(tmp_path):
    woo_order = json.loads((FIXTURES / "woocommerce" / "order_processing.json").read_text())
    # Still "completed": a partial refund only adds to the order's refunds.
    woo_order.update(status="completed", refunds=[{"id": 2001, "reason": "", "total": "-10.00"}])

    lines = _timeline(tmp_path, woo_order, "--delivered-at", "2026-11-25T12:00:00Z")

    assert "review_request skipped: order.refunded already happened" in lines
    assert "points_earned skipped: condition not met: order.points_earned > 0" in lines  # EUR


def test_timeline_names_the_wrong_field_of_a_platform_order(tmp_path):
    shopify_order = json.loads((FIXTURES / "shopify" / "orders_create.json").read_text())
    shopify_order["line_items"][1]["price"] = "twelve"
    order = tmp_path / "order.json"
    order.write_text(json.dumps(shopify_order))

    result = CliRunner().invoke(main, ["campaigns", "timeline", str(order)])

    assert result.exit_code == 2
    assert "not an order: line_items.1.price:" in result.output
