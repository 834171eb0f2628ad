from datetime import UTC, datetime
from pathlib import Path

import pytest

from postpurchase.exceptions import ConfigError
from postpurchase.store.database import transaction
from postpurchase.tasks.loyalty import apply_expiry, refresh_tiers

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "loyalty.yaml"
NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def test_task_summaries_show_sizes_moves_and_expiry(store, make_customer, make_order):
    with transaction(store) as session:
        silver = make_customer(session)
        make_order(session, silver, subtotal="300.00")
    summary = refresh_tiers(SHIPPED, now=NOW)
    assert "tiers: Silver 1; moves: Bronze->Silver 1;" in summary
    assert apply_expiry(SHIPPED, now=NOW).startswith("expired 0 point(s)")


def test_the_config_path_can_be_overridden(db_url, tmp_path, monkeypatch):
    other = tmp_path / "loyalty.yaml"
    other.write_text(SHIPPED.read_text().replace("mode: after_earned", "mode: sometimes"))
    monkeypatch.setenv("POSTPURCHASE_LOYALTY_CONFIG", str(other))
    with pytest.raises(ConfigError) as caught:
        apply_expiry(SHIPPED, now=NOW)
    assert str(caught.value).startswith(f"{other}:")
    assert "expiry.mode: Input should be" in str(caught.value)
