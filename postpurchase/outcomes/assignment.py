"""Stable assignment of a customer to a campaign's arm and variant.

The arm is a pure function of (salt, campaign, customer): a SHA-256 of the three, read as a
number in [0, 1), compared with the holdout share. No table of assignments is needed, a replan
or a second planner gets the same answer, and the touchpoint stores the arm it was planned with
so a later change of share or salt never moves a customer who was already planned (invariant 7).
The variant uses a second, independent hash, so variants split the same way in both arms.

A held-out touchpoint is inserted like any other, with ``arm = 'holdout'`` and status
``skipped`` (reason ``held out``): it is never claimed or sent, its due time is the moment the
message would have gone, and its customer's orders are measured from then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from postpurchase.campaigns.config import Campaign
from postpurchase.store.models import TouchpointStatus

TREATMENT = "treatment"
HOLDOUT = "holdout"
HELD_OUT_REASON = "held out (control group)"

_SCALE = 2**64


# Kept for the customers seen last: planning asks for a customer's variant, then stamps the
# rows with it (and their arm), and one customer's events come in runs.
@lru_cache(maxsize=1024)
def _unit(*parts: str) -> Decimal:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return Decimal(int.from_bytes(digest[:8], "big")) / _SCALE


def arm_of(campaign: Campaign, customer_id: int, salt: str) -> str:
    """``holdout`` for the campaign's holdout share of customers, else ``treatment``."""
    if campaign.holdout <= 0:
        return TREATMENT
    held = _unit(salt, "arm", campaign.id, str(customer_id)) < campaign.holdout
    return HOLDOUT if held else TREATMENT


def variant_of(campaign: Campaign, customer_id: int, salt: str) -> str | None:
    """The id of the customer's variant (by weight), or None when the campaign has none."""
    if not campaign.variants:
        return None
    total = sum(v.weight for v in campaign.variants)
    point = _unit(salt, "variant", campaign.id, str(customer_id)) * total
    for variant in campaign.variants:
        point -= variant.weight
        if point < 0:
            return variant.id
    return campaign.variants[-1].id


def variant_campaign(campaign: Campaign, variant_id: str | None) -> Campaign:
    """The campaign as the variant plans it (its own delay, when it sets one)."""
    if variant_id is None:
        return campaign
    variant = next((v for v in campaign.variants if v.id == variant_id), None)
    if variant is None or variant.delay is None:
        return campaign
    return campaign.model_copy(update={"delay": variant.delay})


def stamp(rows: Iterable[dict[str, Any]], campaign: Campaign, salt: str) -> None:
    """Set ``arm`` and ``variant`` on touchpoint rows about to be inserted, in place.

    Held-out rows become ``skipped`` with the held-out reason: planned for measurement only.
    """
    assigned: dict[int, tuple[str, str | None]] = {}  # by customer: each is hashed once
    for row in rows:
        customer_id = row["customer_id"]
        if customer_id not in assigned:
            assigned[customer_id] = (
                arm_of(campaign, customer_id, salt),
                variant_of(campaign, customer_id, salt),
            )
        arm, variant = assigned[customer_id]
        row["arm"] = arm
        row["variant"] = variant
        if arm == HOLDOUT:
            row["status"] = TouchpointStatus.SKIPPED
            row["reason"] = HELD_OUT_REASON
        else:
            row.setdefault("reason", None)
