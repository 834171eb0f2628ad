"""The shipped nps_survey and service_recovery campaigns, planned from their events."""

from __future__ import annotations

from event_journeys import at, order_event, put, touchpoints

from postpurchase.campaigns.config import load_campaigns
from postpurchase.settings import PROJECT_ROOT


def _shipped(*ids):
    shipped = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
    return shipped.model_copy(update={"campaigns": [c for c in shipped.campaigns if c.id in ids]})


def test_nps_survey_goes_a_month_after_delivery_by_email_first(store, drain):
    put(store, order_event("order.paid", "2026-03-02T09:00:00+00:00", phone="+12125550134"))
    put(store, order_event("order.delivered", "2026-03-06T17:00:00+00:00"))

    drain(config=_shipped("nps_survey"), loyalty=False)

    rows = touchpoints(store)
    assert [(c, s, ch) for c, s, ch, *_ in rows] == [("nps_survey", 0, "email")]
    # 30 days after delivery: noon in New York, inside the 10:00-19:00 send window (EDT now)
    assert rows[0][3] == at("2026-04-05T16:00:00+00:00")


def test_service_recovery_goes_within_the_hour_of_a_negative_answer(store, drain):
    put(store, order_event("order.paid", "2026-03-02T09:00:00+00:00"))
    put(store, order_event("feedback.negative", "2026-03-10T23:30:00+00:00"))

    drain(now="2026-03-10T23:31:00+00:00", config=_shipped("service_recovery"), loyalty=False)

    assert [(c, due) for c, _, _, due, _, _ in touchpoints(store)] == [
        ("service_recovery", at("2026-03-10T23:35:00+00:00"))  # no send window: at night too
    ]
