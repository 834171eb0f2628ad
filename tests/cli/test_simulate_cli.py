"""``postpurchase campaigns simulate FILE``: the what-if table, progress on stderr, and an
invalid file reported as file:line with exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from deliveries import SHOPIFY_SECRET, intake_settings
from fastapi.testclient import TestClient

from postpurchase.campaigns.config import load_campaigns
from postpurchase.cli import main
from postpurchase.demo.feed import build_feed
from postpurchase.demo.replay import shopify_request
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT
from postpurchase.webhooks.app import create_app

SHIPPED = PROJECT_ROOT / "config" / "campaigns.yaml"


def test_simulate_prints_both_files_per_campaign(db_url, store, tmp_path):
    now = datetime.now(UTC)
    app = create_app(intake_settings(db_url), session_factory=store, clock=lambda: now)
    with TestClient(app) as client:
        for delivery in build_feed(orders=12, now=now - timedelta(days=1)):
            body, headers = shopify_request(json.loads(delivery.to_json()), SHOPIFY_SECRET)
            assert (
                client.post("/webhooks/shopify", content=body, headers=headers).status_code == 202
            )
    process_inbox(
        store,
        load_campaigns(SHIPPED),
        worker="test",
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: now,
        loyalty=load_loyalty_config(PROJECT_ROOT / "config" / "loyalty.yaml"),
    )
    edited = tmp_path / "campaigns.yaml"
    edited.write_text(
        SHIPPED.read_text(encoding="utf-8").replace(
            "  - id: points_earned\n", "  - id: points_earned\n    enabled: false\n"
        ),
        encoding="utf-8",
    )

    result = CliRunner().invoke(main, ["campaigns", "simulate", str(edited), "--days", "2"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"file: {edited}; current: {SHIPPED}"
    assert lines[1].startswith("replayed ") and " event(s) processed " in lines[1]
    assert lines[3].split() == ["campaign"] + ["file", "current"] * 3
    rows = {line.split()[0]: line.split()[1:] for line in lines[4:] if not line.startswith(" ")}
    assert rows["points_earned"][0] == "off" and int(rows["points_earned"][1]) > 0
    assert rows["delivery_checkin"][0] == rows["delivery_checkin"][1]
    assert result.stderr.splitlines()[-1].startswith("replayed ")


def test_an_invalid_file_is_named_with_its_line(db_url, tmp_path):
    broken = tmp_path / "campaigns.yaml"
    text = SHIPPED.read_text(encoding="utf-8").replace("delay: 3d", "delay: soon", 1)
    broken.write_text(text, encoding="utf-8")
    line = text.splitlines().index("    delay: soon") + 1

    result = CliRunner().invoke(main, ["campaigns", "simulate", str(broken)])

    assert result.exit_code == 2
    assert f"campaigns.yaml:{line}: delay:" in result.stderr
    assert "Traceback" not in result.output


def test_help_says_what_it_does():
    result = CliRunner().invoke(main, ["campaigns", "simulate", "--help"])
    assert result.exit_code == 0
    assert "sending and storing nothing" in " ".join(result.output.split())
    assert "--days" in result.output
