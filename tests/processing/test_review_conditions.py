"""``review.submitted`` carries its rating to conditions; feedback.negative is a trigger."""

from __future__ import annotations

import pytest
from event_journeys import at, order_event, put, touchpoints

from postpurchase.campaigns.config import CampaignConfig


def _thanks_for(when: str | None, trigger: str = "review.submitted") -> CampaignConfig:
    campaign = {
        "id": "thank_you_note",
        "description": "Thank a happy reviewer with a note from the founder.",
        "trigger": trigger,
        "delay": "1h",
        "channels": ["email"],
        "template": "thank_you_note",
        "consent": "transactional",
    }
    if when:
        campaign["when"] = when
    return CampaignConfig.model_validate({"campaigns": [campaign]})


@pytest.mark.parametrize(("rating", "planned"), [(5, 1), (2, 0)])
def test_a_condition_reads_the_rating_of_the_review(store, drain, rating, planned):
    put(store, order_event("order.paid", "2026-03-02T09:00:00+00:00"))
    put(
        store,
        order_event(
            "review.submitted",
            "2026-03-10T09:00:00+00:00",
            review={"rating": rating, "product_id": "p-1"},
        ),
    )

    drain(config=_thanks_for("review.rating is not none and review.rating >= 4"), loyalty=False)

    rows = touchpoints(store)
    assert len(rows) == planned
    if planned:
        assert rows[0][3] == at("2026-03-10T10:00:00+00:00")


def test_feedback_negative_is_a_trigger(store, drain):
    put(store, order_event("order.paid", "2026-03-02T09:00:00+00:00"))
    put(store, order_event("feedback.negative", "2026-03-10T09:00:00+00:00"))

    drain(config=_thanks_for(None, trigger="feedback.negative"), loyalty=False)

    assert [(c, due) for c, _, _, due, _, _ in touchpoints(store)] == [
        ("thank_you_note", at("2026-03-10T10:00:00+00:00"))
    ]
