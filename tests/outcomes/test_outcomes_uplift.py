"""The uplift interval and verdict, against examples worked by hand."""

from __future__ import annotations

import pytest

from postpurchase.outcomes.uplift import measure_uplift


def test_a_significant_uplift_matches_the_worked_example():
    # p1 = 900/9000 = 0.10, p0 = 70/1000 = 0.07, difference 0.03
    # se = sqrt(0.1*0.9/9000 + 0.07*0.93/1000) = sqrt(0.0000751) = 0.00866603
    # 1.96 * se = 0.01698541 -> CI 0.01301459 .. 0.04698541
    result = measure_uplift(
        "review_request", treated=9000, treated_buyers=900, held=1000, held_buyers=70
    )
    assert result.uplift == pytest.approx(0.03)
    assert result.ci_low == pytest.approx(0.01301459, abs=1e-8)
    assert result.ci_high == pytest.approx(0.04698541, abs=1e-8)
    assert result.significant
    assert result.verdict == "sending this adds 3.0 points of conversion, 95% CI 1.3-4.7"


def test_a_difference_not_yet_significant_says_how_many_more_recipients():
    # p1 = 55/500 = 0.11, p0 = 5/50 = 0.10; se = sqrt(0.0001958 + 0.0018) = 0.044674
    # CI -0.0776 .. 0.0976 includes 0. Holdout share h = 50/550:
    # N = 3.8416 * (0.0979/(1-h) + 0.09/h) / 0.01^2 = 42,169; 41,619 more -> about 42,000
    result = measure_uplift("points_earned", treated=500, treated_buyers=55, held=50, held_buyers=5)
    assert not result.significant
    assert result.ci_low == pytest.approx(-0.0775617, abs=1e-6)
    assert result.more_needed == 42_000
    assert result.verdict == "not significant yet; about 42,000 more recipients needed"


def test_a_harmful_campaign_and_the_degenerate_cases():
    harm = measure_uplift("x", treated=9000, treated_buyers=450, held=1000, held_buyers=90)
    assert harm.significant and harm.uplift == pytest.approx(-0.04)
    assert harm.verdict.startswith("sending this lowers conversion by 4.0 points")
    same = measure_uplift("x", treated=100, treated_buyers=10, held=10, held_buyers=1)
    assert same.verdict == "not significant yet; no difference between the arms so far"
    none = measure_uplift("x", treated=100, treated_buyers=10, held=0, held_buyers=0)
    assert (none.significant, none.verdict) == (False, "no holdout recipients yet")


def test_a_tiny_holdout_is_never_significant():
    # 12/36 against 0/4 would give an interval of 17.9-48.7 points: four people prove nothing
    result = measure_uplift("x", treated=36, treated_buyers=12, held=4, held_buyers=0)
    assert not result.significant
    # 30 held out at the current split (1 in 10) means 300 recipients: 260 more
    assert result.verdict == "not significant yet; about 260 more recipients needed"
