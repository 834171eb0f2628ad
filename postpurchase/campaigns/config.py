"""Campaign configuration: ``config/campaigns.yaml`` read into typed, validated models.

The file is marketing-owned and read each time a task runs, so an edit needs no restart. Every
problem is reported as ``FILE:LINE: message`` (all of them at once, not the first only):
YAML syntax, unknown or duplicate keys, bad durations, windows, events or channels, and
``when`` expressions that do not compile. ``load_campaigns`` raises ConfigError with those
lines; template checks live in ``template_check`` because they need the templates folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
)
from pydantic_core import ErrorDetails

from postpurchase.campaigns.conditions import Condition, compile_condition
from postpurchase.campaigns.experiments import (
    Attribution,
    Outcomes,
    Share,
    Variant,
    experiment_problems,
)
from postpurchase.campaigns.gating import gating_problems
from postpurchase.campaigns.timing import Delay, SendWindow, parse_delay, parse_window
from postpurchase.exceptions import ConfigError
from postpurchase.journey import CUSTOMER_LAPSED, CUSTOMER_TRIGGERS, Canceller, Trigger
from postpurchase.shop_settings.config import KEY_HINT, SHOP_KEY
from postpurchase.store.models import Channel
from postpurchase.yaml_source import SourceMap, YamlPath, read_yaml


def _parsed(parse: Any, what: str) -> Any:
    def validate(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"expected {what} as text")
        return parse(str(value))

    return BeforeValidator(validate)


DelayText = Annotated[Delay, _parsed(parse_delay, "a duration such as 3d")]
WindowText = Annotated[SendWindow, _parsed(parse_window, "a window such as 10:00-19:00")]
ConditionText = Annotated[Condition, _parsed(compile_condition, "a Jinja expression")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Reminders(_Model):
    """Follow-ups after the first message, ``delay`` apart, stopped by ``cancel_on`` events."""

    delay: DelayText
    count: int = Field(default=1, ge=1, le=5)


class Campaign(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str = Field(min_length=1)
    enabled: bool = True
    trigger: Trigger
    delay: DelayText = Delay()
    send_window: WindowText | None = None
    # ``first``: the first channel the customer has an address for; ``all``: every one of them.
    channels: list[Channel] = Field(min_length=1)
    channel_mode: Literal["first", "all"] = "first"
    template: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    when: ConditionText | None = None
    cancel_on: list[Canceller] = Field(default_factory=list)
    reminders: Reminders | None = None
    consent: Literal["transactional", "marketing"]
    smart_sending: bool = True
    priority: int = Field(default=50, ge=0, le=100)
    # A message not sent this long after it fell due is skipped, not sent late (after an
    # outage, or for orders imported from long ago); None sends however late.
    expires_after: DelayText | None = None
    # Measuring it (campaigns/experiments.py): control group, A/B variants, attribution.
    holdout: Share = Decimal(0)
    variants: list[Variant] = Field(default_factory=list)
    attribution: Attribution | None = None

    @property
    def customer_level(self) -> bool:
        """True when touchpoints are about the customer (tier, lapse), not one order."""
        return self.trigger in CUSTOMER_TRIGGERS

    @property
    def steps(self) -> int:
        """How many messages per channel: the first plus the reminders."""
        return 1 + (self.reminders.count if self.reminders else 0)


class CampaignOverride(_Model):
    """What one shop changes of a campaign; None: as the campaign says."""

    enabled: bool | None = None
    delay: DelayText | None = None
    template: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_]*$")

    def changes(self) -> dict[str, Any]:
        """The campaign fields this override sets, as validated values."""
        return {
            name: value
            for name in type(self).model_fields
            if (value := getattr(self, name)) is not None
        }


class ShopCampaigns(_Model):
    """The ``shops:`` entry of one shop: its campaign overrides by campaign id."""

    campaigns: dict[str, CampaignOverride] = Field(default_factory=dict)


class CampaignConfig(_Model):
    version: Literal[1] = 1
    # An order that never reports delivery is treated as delivered this long after fulfilment.
    delivery_fallback: DelayText = Field(default_factory=lambda: Delay(days=10))
    campaigns: list[Campaign] = Field(default_factory=list)
    outcomes: Outcomes = Field(default_factory=Outcomes)
    # By shop key (as in shops.yaml): what that shop does differently.
    shops: dict[str, ShopCampaigns] = Field(default_factory=dict)
    # Each configured shop's time zone, attached by ``with_shop_zones`` (not from the file).
    _shop_zones: dict[str, ZoneInfo] = PrivateAttr(default_factory=dict)

    def enabled(self) -> list[Campaign]:
        return [c for c in self.campaigns if c.enabled]

    def by_id(self, campaign_id: str) -> Campaign | None:
        return next((c for c in self.campaigns if c.id == campaign_id), None)

    def for_shop(self, shop: str) -> CampaignConfig:
        """The campaigns as they apply to ``shop``: its overrides applied (this config when
        it has none)."""
        overrides = self.shops.get(shop.strip().lower())
        if overrides is None or not overrides.campaigns:
            return self
        campaigns = [
            c.model_copy(update=overrides.campaigns[c.id].changes())
            if c.id in overrides.campaigns
            else c
            for c in self.campaigns
        ]
        shop_config = self.model_copy(update={"campaigns": campaigns, "shops": {}})
        shop_config._shop_zones = self._shop_zones
        return shop_config

    def with_shop_zones(self, zones: Mapping[str, ZoneInfo]) -> CampaignConfig:
        """This config knowing each shop's time zone (``shop_zone``)."""
        config = self.model_copy()
        config._shop_zones = dict(zones)
        return config

    def shop_zone(self, shop: str, default: ZoneInfo) -> ZoneInfo:
        """``shop``'s time zone: the zone of customers without their own; else ``default``."""
        return self._shop_zones.get(shop.strip().lower(), default)


def _message(error: ErrorDetails) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if error["type"] == "missing":
        return f"missing required key {loc[-1]!r}"
    message = error["msg"].removeprefix("Value error, ")
    # The key at fault, with a list index when the problem is one item: "channels[1]".
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return message
    index = f"[{loc[-1]}]" if isinstance(loc[-1], int) and len(loc) > 2 else ""
    return f"{names[-1]}{index}: {message}"


def _semantic_problems(config: CampaignConfig, source: SourceMap) -> Iterator[str]:
    seen: dict[str, int] = {}
    for index, campaign in enumerate(config.campaigns):
        at: YamlPath = ("campaigns", index)
        if campaign.id in seen:
            first = seen[campaign.id]
            yield (
                f"{source.where((*at, 'id'))}: duplicate campaign id {campaign.id!r} "
                f"(first at line {first})"
            )
        seen.setdefault(campaign.id, source.line((*at, "id")))
        if "order.placed" in campaign.cancel_on and not campaign.customer_level:
            yield (
                f"{source.where((*at, 'cancel_on'))}: campaign {campaign.id}: order.placed can "
                "only cancel customer-level campaigns (tier.changed, customer.lapsed)"
            )
        expiry = campaign.expires_after
        if expiry is not None and not (expiry.days or expiry.seconds):
            yield (
                f"{source.where((*at, 'expires_after'))}: campaign {campaign.id}: "
                "expires_after must be longer than 0 (leave it out to send however late)"
            )
        for problem in experiment_problems(campaign.holdout, campaign.variants):
            key = problem.split(":")[0]
            yield f"{source.where((*at, key))}: campaign {campaign.id}: {problem}"
        if campaign.trigger in campaign.cancel_on and campaign.trigger != CUSTOMER_LAPSED:
            yield (
                f"{source.where((*at, 'cancel_on'))}: campaign {campaign.id}: "
                f"{campaign.trigger} both triggers and cancels it"
            )
    yield from _shop_problems(config, source)


def _shop_problems(config: CampaignConfig, source: SourceMap) -> Iterator[str]:
    ids = {c.id for c in config.campaigns}
    for shop, overrides in config.shops.items():
        if re.fullmatch(SHOP_KEY, shop) is None:
            yield f"{source.where(('shops', shop))}: shop key {shop!r}: {KEY_HINT}"
        for campaign_id in overrides.campaigns:
            if campaign_id not in ids:
                yield (
                    f"{source.where(('shops', shop, 'campaigns', campaign_id))}: shop {shop}: "
                    f"no campaign {campaign_id!r} to override"
                )


def parse_campaigns(data: Any, source: SourceMap) -> CampaignConfig:
    """Validate parsed YAML; ConfigError with one ``file:line: message`` per problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source.where(())}: expected a mapping with a 'campaigns' list")
    gated = dict(gating_problems(data, source))
    try:
        config = CampaignConfig.model_validate(data)
    except ValidationError as exc:
        problems = list(gated.values()) + [
            f"{source.where(tuple(e['loc']))}: {_message(e)}"
            for e in exc.errors()
            # a gated condition's unknown name is said better by the gating reason
            if not (len(e["loc"]) > 2 and e["loc"][1] in gated and e["loc"][2] == "when")
        ]
        raise ConfigError("\n".join(problems)) from None
    if gated:
        raise ConfigError("\n".join(gated.values()))
    semantic = list(_semantic_problems(config, source))
    if semantic:
        raise ConfigError("\n".join(semantic))
    return config


def load_campaigns(path: Path) -> CampaignConfig:
    """Read and validate ``path``. Raises ConfigError listing every problem as file:line."""
    data, source = read_yaml(path)
    return parse_campaigns(data, source)
