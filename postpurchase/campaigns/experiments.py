"""What a campaign measures: a holdout share, A/B variants and its attribution windows.

Written in ``config/campaigns.yaml`` next to the campaign::

    holdout: 10%              # share of customers who never get it (the control group)
    variants:                 # A/B: each customer always gets the same one
      - {id: a, weight: 1}
      - {id: b, weight: 1, subject: "Your points are in"}
    attribution: {email: 5d, sms: 1d}   # an order this long after a click is the message's

``outcomes:`` at the top of the file holds the defaults and the deliverability guard.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from postpurchase.campaigns.timing import Delay, parse_delay


def _share(value: Any) -> Decimal:
    """``10%`` or ``0.1`` as a Decimal fraction; floats would make 10% 0.1000000000000000055."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("expected a share such as 10%")
    text = str(value).strip()
    try:
        share = Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a share such as 10%") from None
    if not Decimal(0) <= share <= Decimal(1):
        raise ValueError(f"{value!r} is not between 0% and 100%")
    return share


def _delay(value: Any) -> Delay:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("expected a duration such as 5d")
    return parse_delay(str(value))


Share = Annotated[Decimal, BeforeValidator(_share)]
Window = Annotated[Delay, BeforeValidator(_delay)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Variant(_Model):
    """One arm of an A/B test: a template, subject or delay instead of the campaign's."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_]{0,31}$")
    weight: int = Field(default=1, ge=1, le=1000)
    template: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_]*$")
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    delay: Window | None = None


class Attribution(_Model):
    """How long after a click on a message an order is credited to it (last touch)."""

    email: Window = Field(default_factory=lambda: Delay(days=5))
    sms: Window = Field(default_factory=lambda: Delay(days=1))

    def seconds(self, channel: str) -> int:
        window = self.email if channel == "email" else self.sms
        return int(window.days * 86400 + window.seconds)


class Guard(_Model):
    """Pause a campaign whose recent sends draw complaints or bounces past these rates."""

    complaint_rate: Share = Decimal("0.003")  # Gmail and Yahoo's bulk-sender limit
    bounce_rate: Share = Decimal("0.05")
    over: Window = Field(default_factory=lambda: Delay(days=7))
    # Below this many sends a single complaint is noise, not a rate.
    min_sends: int = Field(default=200, ge=1)


class Outcomes(_Model):
    """File-wide defaults: assignment salt, attribution windows, the deliverability guard."""

    # Part of every arm and variant hash; changing it reshuffles future assignments only
    # (touchpoints keep the arm they were planned with).
    salt: str = Field(default="postpurchase", min_length=1, max_length=64)
    attribution: Attribution = Field(default_factory=Attribution)
    guard: Guard = Field(default_factory=Guard)
    # What one loyalty point is worth in the shop currency, to value the points outstanding.
    point_value: Decimal | None = Field(default=None, ge=0)


def experiment_problems(holdout: Decimal, variants: list[Variant]) -> list[str]:
    """What is wrong with a campaign's holdout and variants, as ``key: message`` lines."""
    problems = []
    if holdout > Decimal("0.5"):
        problems.append("holdout: at most 50% (the rest must be worth sending to)")
    ids = [v.id for v in variants]
    if len(ids) != len(set(ids)):
        problems.append("variants: each id must be unique")
    if len(variants) == 1:
        problems.append("variants: list two or more, or none")
    return problems
