from pathlib import Path

import pytest

from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.config import (
    DEFAULT_REFRESH_CRON,
    ExpiryMode,
    load_loyalty_config,
    parse_loyalty_config,
    refresh_cron,
)

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "loyalty.yaml"

VALID = """\
shop_currency: EUR
earning:
  points_per_unit: 2
tiers:
  levels:
    - name: Member
    - name: Gold
      min_spend: 500
      multiplier: 1.5
"""


def test_the_shipped_file_is_valid():
    config = load_loyalty_config(SHIPPED)
    assert [level.name for level in config.tiers.levels] == ["Bronze", "Silver", "Gold", "VIP"]
    assert config.expiry.mode is ExpiryMode.AFTER_EARNED
    assert refresh_cron(SHIPPED) == config.tiers.refresh_cron


def test_defaults_fill_what_is_left_out():
    config = parse_loyalty_config(VALID, "loyalty.yaml")
    assert config.expiry.mode is ExpiryMode.NEVER
    assert config.tiers.grace_days == 30 and config.tiers.window_months == 12
    assert config.tiers.level("Gold").multiplier == 1.5
    assert config.tiers.level("Platinum").name == "Member"  # unknown names fall to the base


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            VALID.replace("  points_per_unit: 2\n", "  points_per_unit: 2\n  pointz: 3\n"),
            "loyalty.yaml:4: earning.pointz: Extra inputs are not permitted",
        ),
        (
            VALID.replace("min_spend: 500", "min_spend: lots"),
            "loyalty.yaml:8: tiers.levels[1].min_spend: Input should be a valid decimal",
        ),
        (
            VALID.replace("      min_spend: 500\n", ""),
            "loyalty.yaml:4: tiers: level 'Gold' needs min_spend, min_orders or min_rfm",
        ),
        (
            VALID + "expiry:\n  mode: after_earned\n",
            "loyalty.yaml:10: expiry: months is required when mode is after_earned",
        ),
        (
            VALID.replace("shop_currency: EUR\n", ""),
            "loyalty.yaml:1: shop_currency: Field required",
        ),
        (
            VALID.replace("earning:\n", "earning:\n  rounding: sideways\n"),
            "loyalty.yaml:3: earning.rounding: Input should be 'down', 'nearest' or 'up'",
        ),
        (
            VALID + "tiers:\n  levels: []\n",
            "loyalty.yaml:10: duplicate key 'tiers'",
        ),
        (
            VALID + "bonuses:\n  - name: welcome\n    points: 10\n",
            "loyalty.yaml:11: bonuses[0]: give a condition",
        ),
        (VALID + "  - [unclosed\n", "loyalty.yaml:10: invalid YAML"),
    ],
)
def test_errors_name_the_line_and_the_place(text, expected):
    with pytest.raises(ConfigError) as caught:
        parse_loyalty_config(text, "loyalty.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_a_broken_file_never_breaks_dag_parsing(tmp_path):
    broken = tmp_path / "loyalty.yaml"
    broken.write_text(VALID.replace("EUR", "euros"))
    assert refresh_cron(broken) == DEFAULT_REFRESH_CRON
    assert refresh_cron(tmp_path / "missing.yaml") == DEFAULT_REFRESH_CRON
    with pytest.raises(ConfigError, match=r"loyalty.yaml:1: shop_currency"):
        load_loyalty_config(broken)
    with pytest.raises(ConfigError, match="missing.yaml: cannot read"):
        load_loyalty_config(tmp_path / "missing.yaml")
