"""``config/loyalty.yaml``: how points are earned and expire, and how tiers are defined.

The file is read with line numbers kept, then validated with pydantic (unknown keys refused),
so every mistake is reported as ``file:line: where.in.file: what was expected``.
``load_loyalty_config`` raises ConfigError; nothing here touches the database, so DAG files may
call ``refresh_cron`` at parse time.
"""

from __future__ import annotations

import enum
import os
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.reward_catalogue import MoreWaysToEarn, Reward, check_catalogue
from postpurchase.yaml_source import YamlPath, parse_yaml

CONFIG_ENV = "POSTPURCHASE_LOYALTY_CONFIG"
DEFAULT_REFRESH_CRON = "30 2 * * *"
_CRON_ALIASES = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Rounding(enum.StrEnum):
    """How fractional points become whole points (awards and refund reversals alike)."""

    DOWN = "down"
    NEAREST = "nearest"  # half up
    UP = "up"


class Earning(_Model):
    points_per_unit: Decimal = Field(ge=0, max_digits=12, decimal_places=4)
    subtract_discounts: bool = False
    include_tax: bool = False
    include_shipping: bool = False
    rounding: Rounding = Rounding.DOWN


class Bonus(_Model):
    """Extra points when every condition given holds.

    ``points`` is added once per order; ``points_per_unit`` is added per unit of currency spent
    on the matching lines (on the whole earning basis when no product condition is given).
    Bonuses are not multiplied by the tier multiplier.
    """

    name: str = Field(min_length=1, max_length=64)
    first_order: bool = False
    product_type: str | None = None
    vendor: str | None = None
    product_id: str | None = None
    points: int = Field(default=0, ge=0)
    points_per_unit: Decimal = Field(default=Decimal("0"), ge=0, max_digits=12, decimal_places=4)

    @property
    def has_product_condition(self) -> bool:
        # read for every bonus of every award: plain comparisons, no generator
        return (
            self.product_type is not None or self.vendor is not None or self.product_id is not None
        )

    @model_validator(mode="after")
    def _meaningful(self) -> Self:
        if not (self.first_order or self.has_product_condition):
            raise ValueError("give a condition: first_order, product_type, vendor or product_id")
        if self.points == 0 and self.points_per_unit == 0:
            raise ValueError("give points or points_per_unit greater than 0")
        return self


class ExpiryMode(enum.StrEnum):
    AFTER_EARNED = "after_earned"  # each award expires `months` after it was earned
    AFTER_INACTIVITY = "after_inactivity"  # the whole balance, `months` after the last purchase
    NEVER = "never"


class Expiry(_Model):
    mode: ExpiryMode = ExpiryMode.NEVER
    months: int | None = Field(default=None, ge=1, le=120)
    # The points.expiring message goes this many days before points expire (after_earned).
    notice_days: int = Field(default=14, ge=1, le=90)

    @model_validator(mode="after")
    def _months_when_expiring(self) -> Self:
        if self.mode is not ExpiryMode.NEVER and self.months is None:
            raise ValueError(f"months is required when mode is {self.mode.value}")
        return self


class TierLevel(_Model):
    """A tier; a customer qualifies when every criterion given is met over the window."""

    name: str = Field(min_length=1, max_length=64)
    min_spend: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    min_orders: int | None = Field(default=None, ge=1)
    min_rfm: int | None = Field(default=None, ge=3, le=15)
    multiplier: Decimal = Field(default=Decimal("1"), ge=0, le=100, decimal_places=4)
    # A reward given (free) to a customer reaching this tier, once: a VIP welcome gift.
    welcome_reward: str | None = Field(default=None, max_length=64)

    @property
    def has_criteria(self) -> bool:
        return any(v is not None for v in (self.min_spend, self.min_orders, self.min_rfm))


class Tiers(_Model):
    window_months: int = Field(default=12, ge=1, le=120)
    grace_days: int = Field(default=30, ge=0, le=3650)
    refresh_cron: str = DEFAULT_REFRESH_CRON
    levels: list[TierLevel] = Field(min_length=1)

    @field_validator("refresh_cron")
    @classmethod
    def _cron_shape(cls, value: str) -> str:
        if value not in _CRON_ALIASES and len(value.split()) != 5:
            raise ValueError("expected a 5-field cron expression such as '30 2 * * *', or @daily")
        return value

    @model_validator(mode="after")
    def _levels_consistent(self) -> Self:
        names = [level.name for level in self.levels]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"tier names must be unique; repeated: {', '.join(duplicated)}")
        if self.levels[0].has_criteria:
            raise ValueError(f"the first (lowest) level {names[0]!r} is everyone's: no min_*")
        for level in self.levels[1:]:
            if not level.has_criteria:
                raise ValueError(f"level {level.name!r} needs min_spend, min_orders or min_rfm")
        return self

    @property
    def base(self) -> TierLevel:
        return self.levels[0]

    @cached_property
    def levels_by_name(self) -> dict[str | None, TierLevel]:
        return {level.name: level for level in self.levels}

    def level(self, name: str | None) -> TierLevel:
        """The level called ``name``; the base level for None or a name no longer configured.
        (Asked for every loyalty award a drainer makes: a dictionary, not a search.)"""
        level = self.levels_by_name.get(name)
        return self.base if level is None else level


class ReviewReward(_Model):
    """Points for a published review: once per product and customer (``reviews.rewards``)."""

    points: int = Field(ge=1, le=1_000_000)


class LoyaltyConfig(_Model):
    shop_currency: str = Field(pattern=r"^[A-Z]{3}$")
    earning: Earning
    bonuses: list[Bonus] = Field(default_factory=list)
    expiry: Expiry = Expiry()
    tiers: Tiers
    rewards: list[Reward] = Field(default_factory=list)  # see postpurchase.loyalty.reward_catalogue
    more_ways_to_earn: MoreWaysToEarn = MoreWaysToEarn()
    review_reward: ReviewReward | None = None

    @model_validator(mode="after")
    def _unique_bonus_names(self) -> Self:
        names = [b.name for b in self.bonuses]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"bonus names must be unique; repeated: {', '.join(duplicated)}")
        return self

    @field_validator("rewards")
    @classmethod
    def _catalogue(cls, rewards: list[Reward], info: ValidationInfo) -> list[Reward]:
        # tiers is declared (so validated) before rewards; absent when it was invalid itself.
        tiers: Tiers | None = info.data.get("tiers")
        check_catalogue(rewards, [level.name for level in tiers.levels] if tiers else None)
        names = {reward.name for reward in rewards}
        for level in tiers.levels if tiers else []:
            if level.welcome_reward and level.welcome_reward not in names:
                raise ValueError(
                    f"tier {level.name!r} welcome_reward {level.welcome_reward!r} is not a reward"
                )
        return rewards

    def reward(self, name: str) -> Reward | None:
        return next((r for r in self.rewards if r.name == name), None)


def _where(path: YamlPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def parse_loyalty_config(text: str, source: str) -> LoyaltyConfig:
    """Validate YAML ``text``; ConfigError messages start with ``source:line:``."""
    data, lines = parse_yaml(text, Path(source))
    if not isinstance(data, dict):
        raise ConfigError(
            f"{lines.where(())}: expected a mapping with shop_currency, earning, tiers"
        )
    try:
        return LoyaltyConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            # Errors raised by model validators carry no field; pydantic adds none to the loc.
            path = tuple(p for p in err["loc"] if isinstance(p, str | int))
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{lines.where(path)}: {_where(path)}: {message}")
        raise ConfigError("; ".join(problems)) from None


def load_loyalty_config(path: Path) -> LoyaltyConfig:
    """Read and validate the loyalty file at ``path``; ConfigError names file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the loyalty config: {exc.strerror}") from None
    return parse_loyalty_config(text, str(path))


def refresh_cron(path: Path) -> str:
    """The configured refresh cron, or the default when the file is missing or invalid.

    For DAG files at parse time: it never raises, so a broken file cannot break DAG parsing;
    the refresh task itself loads the file strictly and fails with the file:line error.
    """
    try:
        return load_loyalty_config(path).tiers.refresh_cron
    except ConfigError:
        return DEFAULT_REFRESH_CRON


def loyalty_config_path(default: Path) -> Path:
    """``$POSTPURCHASE_LOYALTY_CONFIG`` when set, else ``default`` (the DAGs pass the
    ``config/loyalty.yaml`` deployed beside ``dags/``). Cheap: safe at DAG parse time."""
    return Path(os.environ.get(CONFIG_ENV) or default)
