"""Uplift of a campaign over its holdout: a difference of two proportions with a 95% CI.

Treatment rate p1 = buyers / recipients among first messages sent or due to be sent, holdout
rate p0 the same among the held-out ones (both "paid an order within the attribution window
after the message's moment", clicked or not). The interval is the normal approximation

    (p1 - p0) ± 1.96 · sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)

and the uplift is significant when the interval leaves out 0 and each arm has at least
``MIN_ARM`` recipients. When it is not yet, the verdict
says roughly how many more recipients (at the same split and rates) would make the measured
difference significant: N = 1.96² · (p1q1/(1-h) + p0q0/h) / (p1-p0)², h the holdout share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.96
# The normal approximation needs enough of each arm: with 4 held-out customers and no buyer
# among them the interval would claim certainty. Below this, never "significant".
MIN_ARM = 30


@dataclass(frozen=True)
class Uplift:
    campaign: str
    treatment_rate: float
    holdout_rate: float
    uplift: float
    ci_low: float
    ci_high: float
    significant: bool
    treatment_recipients: int
    holdout_recipients: int
    more_needed: int | None  # None when significant, or when no difference to chase
    verdict: str


def _round_up(value: float) -> int:
    """Two significant digits, rounded up: "about 42,000", not "about 41,619"."""
    if value <= 0:
        return 0
    scale = 10 ** max(0, int(math.log10(value)) - 1)
    return int(math.ceil(value / scale) * scale)


def _points(rate: float) -> str:
    return f"{rate * 100:.1f}"


def measure_uplift(
    campaign: str, *, treated: int, treated_buyers: int, held: int, held_buyers: int
) -> Uplift:
    """The uplift of ``campaign`` from counts of recipients and buyers in each arm."""
    if treated == 0 or held == 0:
        verdict = "no holdout recipients yet" if held == 0 else "no recipients yet"
        p1 = treated_buyers / treated if treated else 0.0
        p0 = held_buyers / held if held else 0.0
        return Uplift(campaign, p1, p0, p1 - p0, 0.0, 0.0, False, treated, held, None, verdict)
    p1, p0 = treated_buyers / treated, held_buyers / held
    diff = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / held)
    low, high = diff - Z95 * se, diff + Z95 * se
    enough = min(treated, held) >= MIN_ARM
    significant = enough and se > 0 and (low > 0 or high < 0)
    more: int | None = None
    ci = f"95% CI {_points(low)}-{_points(high)}"
    if significant and diff > 0:
        verdict = f"sending this adds {_points(diff)} points of conversion, {ci}"
    elif significant:
        verdict = (
            f"sending this lowers conversion by {_points(-diff)} points, "
            f"95% CI {_points(low)} to {_points(high)}"
        )
    elif diff == 0:
        verdict = "not significant yet; no difference between the arms so far"
    else:
        share = held / (treated + held)
        variance = p1 * (1 - p1) / (1 - share) + p0 * (1 - p0) / share
        needed = Z95**2 * variance / diff**2
        # at least MIN_ARM in the smaller arm, at the current split
        needed = max(needed, MIN_ARM / min(share, 1 - share))
        more = _round_up(needed - (treated + held))
        verdict = f"not significant yet; about {more:,} more recipients needed"
    return Uplift(campaign, p1, p0, diff, low, high, significant, treated, held, more, verdict)
