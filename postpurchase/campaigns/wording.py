"""Campaigns said in words, for the people who read them rather than edit the YAML.

A marketer opening the campaigns page wants "1 day after delivery, 10:00-19:00 in the
customer's zone", not ``delay: 1d`` and ``send_window: "10:00-19:00"``. Everything here is a
pure function of a validated ``Campaign`` (and, for locales, the templates folder):

- ``timing_in_words(campaign)``: trigger, delay, send window, reminders and expiry;
- ``describe_campaign(campaign, templates_dir)``: a ``CampaignDescription`` with the timing,
  the condition and cancel rules in words, channels, consent, locales, A/B variants and
  holdout.

The words follow the planner's own reading of the config (``campaigns.timing``): days are
calendar days on the customer's clock, hours and minutes elapsed time, the window local.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from postpurchase.campaigns.config import Campaign
from postpurchase.campaigns.experiments import Variant
from postpurchase.campaigns.timing import Delay, SendWindow
from postpurchase.journey import CUSTOMER_LAPSED

# What each trigger is, as a noun phrase that reads after "1 day after".
TRIGGER_WORDS: dict[str, str] = {
    "order.placed": "the order is placed",
    "order.paid": "payment",
    "order.fulfilled": "fulfilment",
    "order.delivered": "delivery",
    "order.refunded": "a refund",
    "order.cancelled": "cancellation",
    "return.requested": "a return request",
    "review.submitted": "a review",
    "feedback.negative": "negative feedback",
    "tier.changed": "a tier change",
    CUSTOMER_LAPSED: "the customer's last purchase, with none since",
    "reward.issued": "a reward code is issued",
    "points.expiring": "the warning that points will expire",
}
# What each cancelling event does to the campaign, as a clause after "stops if".
CANCEL_WORDS: dict[str, str] = {
    "order.refunded": "the order is refunded",
    "order.cancelled": "the order is cancelled",
    "return.requested": "a return is requested",
    "review.submitted": "the customer leaves a review",
    "order.placed": "the customer places a new order",
}
_CHANNEL_NAMES = {"email": "email", "sms": "SMS"}


def _unit(count: int | float, name: str) -> str:
    count = int(count)
    return f"{count} {name}" + ("" if count == 1 else "s")


def duration_in_words(delay: Delay) -> str:
    """``Delay(days=8, seconds=5400)`` as "8 days 1 hour 30 minutes"; whole weeks as weeks
    ("2 weeks"); "0 minutes" for no delay."""
    parts = []
    if delay.days and delay.days % 7 == 0:
        parts.append(_unit(delay.days // 7, "week"))
    elif delay.days:
        parts.append(_unit(delay.days, "day"))
    hours, rest = divmod(int(delay.seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    for count, name in ((hours, "hour"), (minutes, "minute"), (seconds, "second")):
        if count:
            parts.append(_unit(count, name))
    return " ".join(parts) or "0 minutes"


def window_in_words(window: SendWindow) -> str:
    """A send window as "10:00-19:00 in the customer's zone" (overnight said so)."""
    span = f"{window.start:%H:%M}-{window.end:%H:%M}"
    overnight = " (overnight)" if window.end < window.start else ""
    return f"{span}{overnight} in the customer's zone"


def start_in_words(trigger: str, delay: Delay) -> str:
    """When the first message falls due: "1 day after delivery", "right after payment"."""
    what = TRIGGER_WORDS.get(trigger, trigger)
    if not (delay.days or delay.seconds):
        return f"right after {what}"
    return f"{duration_in_words(delay)} after {what}"


def timing_in_words(campaign: Campaign) -> str:
    """The whole timing of ``campaign`` in one sentence, e.g. "7 days after delivery,
    10:00-19:00 in the customer's zone; then 1 reminder 5 days later; skipped if not sent
    within 10 days of falling due"."""
    words = start_in_words(campaign.trigger, campaign.delay)
    if campaign.send_window is not None:
        words += f", {window_in_words(campaign.send_window)}"
    if campaign.reminders is not None:
        count, gap = campaign.reminders.count, duration_in_words(campaign.reminders.delay)
        words += (
            f"; then 1 reminder {gap} later"
            if count == 1
            else f"; then {count} reminders {gap} apart"
        )
    if campaign.expires_after is not None:
        words += (
            f"; skipped if not sent within {duration_in_words(campaign.expires_after)} "
            "of falling due"
        )
    return words


def channels_in_words(campaign: Campaign) -> str:
    """ "email, or SMS when there is no email address" (``first``) or "email and SMS"."""
    names = [_CHANNEL_NAMES[str(c)] for c in campaign.channels]
    if len(names) == 1:
        return names[0]
    if campaign.channel_mode == "all":
        return ", ".join(names[:-1]) + f" and {names[-1]}"
    return names[0] + "".join(
        f", or {name} when there is no {prior} address"
        for prior, name in zip(names, names[1:], strict=False)
    )


@dataclass(frozen=True)
class VariantDescription:
    """One A/B arm: its share of the treated customers and what it changes."""

    id: str
    share: Decimal  # of the customers who get the campaign, 0..1
    changes: tuple[str, ...]  # e.g. ("subject: Your points are in",); () for the control arm


@dataclass(frozen=True)
class CampaignDescription:
    """A campaign in words, for a page: see the module docstring."""

    id: str
    description: str
    enabled: bool
    trigger: str
    timing: str
    condition: str | None  # the ``when`` expression as written, None when every one qualifies
    cancel_rules: tuple[str, ...]  # "stops if the order is refunded", ...
    channels: str
    consent: str  # "transactional" or "marketing"
    locales: tuple[str, ...]  # "default" first, then each locale with its own templates
    holdout: Decimal  # share held out, 0..1
    variants: tuple[VariantDescription, ...]


def _variant_changes(campaign: Campaign, variant: Variant) -> tuple[str, ...]:
    changes = []
    if variant.template is not None:
        changes.append(f"template: {variant.template}")
    if variant.subject is not None:
        changes.append(f"subject: {variant.subject}")
    if variant.delay is not None:
        changes.append(f"timing: {start_in_words(campaign.trigger, variant.delay)}")
    return tuple(changes)


def template_locales(templates_dir: Path, template: str) -> tuple[str, ...]:
    """ "default" plus each locale ``template`` has its own email or SMS files for, sorted."""
    found = set()
    for path in templates_dir.glob(f"*/{template}.*.j2"):
        # email/<template>.<locale>.html.j2, sms/<template>.<locale>.txt.j2
        middle = path.name[len(template) + 1 :].split(".")
        if len(middle) == 3:
            found.add(middle[0])
    return ("default", *sorted(found))


def describe_campaign(campaign: Campaign, templates_dir: Path) -> CampaignDescription:
    """``campaign`` in words; ``templates_dir`` tells which locales have their own texts."""
    total = sum(v.weight for v in campaign.variants)
    templates = {campaign.template} | {v.template for v in campaign.variants if v.template}
    locales = sorted({loc for t in templates for loc in template_locales(templates_dir, t)})
    return CampaignDescription(
        id=campaign.id,
        description=campaign.description.strip(),
        enabled=campaign.enabled,
        trigger=campaign.trigger,
        timing=timing_in_words(campaign),
        condition=campaign.when.source if campaign.when is not None else None,
        cancel_rules=tuple(f"stops if {CANCEL_WORDS[e]}" for e in campaign.cancel_on),
        channels=channels_in_words(campaign),
        consent=campaign.consent,
        locales=tuple(sorted(locales, key=lambda loc: (loc != "default", loc))),
        holdout=campaign.holdout,
        variants=tuple(
            VariantDescription(v.id, Decimal(v.weight) / total, _variant_changes(campaign, v))
            for v in campaign.variants
        ),
    )
