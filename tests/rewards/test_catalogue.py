"""The rewards catalogue in config/loyalty.yaml: valid as shipped, mistakes named by line."""

from decimal import Decimal
from pathlib import Path

import pytest

from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.config import load_loyalty_config, parse_loyalty_config
from postpurchase.loyalty.reward_catalogue import RewardKind

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "loyalty.yaml"

BASE = """\
shop_currency: EUR
earning:
  points_per_unit: 1
tiers:
  levels:
    - name: Member
    - name: VIP
      min_spend: 500
rewards:
  - name: five_off
    title: Five euros off
    kind: amount_off
    amount: "5.00"
    points: 500
"""


def test_the_shipped_catalogue_has_every_kind():
    config = load_loyalty_config(SHIPPED)
    assert {r.kind for r in config.rewards} == set(RewardKind)
    five = config.reward("five_off")
    assert five is not None and five.amount == Decimal("5.00") and five.points == 500
    assert five.describe("USD") == "5.00 USD off on orders of 25.00 USD or more"
    vip = config.reward("vip_early_access")
    assert vip is not None and not vip.allowed_for("Bronze") and vip.allowed_for("VIP")
    assert not vip.allowed_for(None)
    assert config.more_ways_to_earn.referral.referrer > 0


def test_defaults():
    reward = parse_loyalty_config(BASE, "loyalty.yaml").rewards[0]
    assert reward.valid_days == 30 and reward.min_order == 0 and not reward.refund_on_expiry
    assert reward.allowed_for(None)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('    amount: "5.00"\n', ""),
            "loyalty.yaml:10: rewards[0]: a amount_off reward needs amount",
        ),
        (
            ("    points: 500\n", "    points: 500\n    percent: 10\n"),
            "loyalty.yaml:10: rewards[0]: percent does not apply to a amount_off reward",
        ),
        (
            ("kind: amount_off", "kind: cashback"),
            "loyalty.yaml:12: rewards[0].kind: Input should be 'amount_off'",
        ),
        (
            ("points: 500", "points: 0"),
            "loyalty.yaml:14: rewards[0].points: Input should be greater than or equal to 1",
        ),
        (
            ('amount: "5.00"', 'amount: "5.001"'),
            "loyalty.yaml:13: rewards[0].amount: Decimal input should have no more than 2 decimal",
        ),
        (
            ("    points: 500\n", "    points: 500\n    tiers: [Gold]\n"),
            "loyalty.yaml:9: rewards: [0] 'five_off' names unknown tier(s) Gold",
        ),
        (
            ("    points: 500\n", "    points: 500\n    valid_for: 3\n"),
            "loyalty.yaml:15: rewards[0].valid_for: Extra inputs are not permitted",
        ),
    ],
)
def test_mistakes_name_the_line(change: tuple[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_loyalty_config(BASE.replace(*change), "loyalty.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_reward_names_are_unique():
    text = BASE + BASE[BASE.index("  - name: five_off") :]
    with pytest.raises(ConfigError, match="reward names must be unique; repeated: five_off"):
        parse_loyalty_config(text, "loyalty.yaml")
