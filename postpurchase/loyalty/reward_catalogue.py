"""The rewards catalogue: the ``rewards`` list of ``config/loyalty.yaml``.

Validated with the rest of that file (``postpurchase.loyalty.config``), so a mistake is
reported as ``file:line: rewards[2].percent: ...``. Amounts are in the shop's currency.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RewardKind(enum.StrEnum):
    AMOUNT_OFF = "amount_off"  # a fixed amount off the order
    PERCENT_OFF = "percent_off"
    FREE_SHIPPING = "free_shipping"
    FREE_PRODUCT = "free_product"  # one unit of the product with ``sku`` free


# The field each kind needs; every other value field must be absent.
_VALUE_FIELD = {
    RewardKind.AMOUNT_OFF: "amount",
    RewardKind.PERCENT_OFF: "percent",
    RewardKind.FREE_SHIPPING: None,
    RewardKind.FREE_PRODUCT: "sku",
}


class Reward(_Model):
    """Something points buy: a single-use code for the customer, valid ``valid_days``."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")
    title: str = Field(min_length=1, max_length=120)  # shown to customers
    kind: RewardKind
    points: int = Field(ge=1)
    amount: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    percent: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=2)
    sku: str | None = Field(default=None, min_length=1, max_length=128)
    min_order: Decimal = Field(default=Decimal("0"), ge=0, max_digits=12, decimal_places=2)
    valid_days: int = Field(default=30, ge=1, le=3650)
    # Only customers in one of these tiers may redeem (early access); empty: everyone.
    tiers: list[str] = Field(default_factory=list)
    # An unused code that expires gives its points back.
    refund_on_expiry: bool = False

    @model_validator(mode="after")
    def _value_matches_kind(self) -> Self:
        wanted = _VALUE_FIELD[self.kind]
        for name in ("amount", "percent", "sku"):
            given = getattr(self, name) is not None
            if name == wanted and not given:
                raise ValueError(f"a {self.kind.value} reward needs {name}")
            if name != wanted and given:
                raise ValueError(f"{name} does not apply to a {self.kind.value} reward")
        return self

    def allowed_for(self, tier: str | None) -> bool:
        return not self.tiers or (tier is not None and tier in self.tiers)

    def describe(self, currency: str) -> str:
        """What the code gives, in words (messages, the rewards page)."""
        if self.kind is RewardKind.AMOUNT_OFF:
            text = f"{self.amount} {currency} off"
        elif self.kind is RewardKind.PERCENT_OFF:
            text = f"{format((self.percent or Decimal(0)).normalize(), 'f')}% off"
        elif self.kind is RewardKind.FREE_SHIPPING:
            text = "free shipping"
        else:
            text = f"a free {self.sku}"
        if self.min_order:
            text += f" on orders of {self.min_order} {currency} or more"
        return text


class Referral(_Model):
    referrer: int = Field(default=0, ge=0)  # points for the customer who referred
    referred: int = Field(default=0, ge=0)  # points for the new customer


class MoreWaysToEarn(_Model):
    """Points for causes other than an order, each once per cause (``bonus`` ledger rows)."""

    account_created: int = Field(default=0, ge=0)
    birthday: int = Field(default=0, ge=0)  # once a year, on or after the birthday
    review: int = Field(default=0, ge=0)  # a published review, once per order and product
    referral: Referral = Referral()


def check_catalogue(rewards: list[Reward], tier_names: list[str] | None) -> None:
    """Cross-field checks: unique names, tiers that exist (unchecked when ``tier_names`` is
    None). ValueError with what is wrong."""
    names = [r.name for r in rewards]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"reward names must be unique; repeated: {', '.join(duplicated)}")
    for index, reward in enumerate(rewards if tier_names is not None else []):
        assert tier_names is not None
        unknown = [t for t in reward.tiers if t not in tier_names]
        if unknown:
            raise ValueError(
                f"[{index}] {reward.name!r} names unknown tier(s) {', '.join(unknown)}; "
                f"configured: {', '.join(tier_names)}"
            )
