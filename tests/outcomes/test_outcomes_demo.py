"""The demo's simulated outcomes: marked as simulated, reproducible, and shown as a funnel."""

from __future__ import annotations

from datetime import timedelta

from outcome_data import T0, customers, order, touchpoint
from sqlalchemy import func, select

from postpurchase.campaigns.config import load_campaigns
from postpurchase.demo.outcomes import simulate_outcomes
from postpurchase.demo.summary import outcome_lines
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import MessageEvent, Order
from postpurchase.tasks.outcomes import measure_outcomes


def test_simulated_outcomes_are_labelled_repeatable_and_summarised(store):
    with transaction(store) as session:
        for n, customer in enumerate(customers(session, 300)):
            order(session, customer, T0 - timedelta(days=9), "60.00")
            touchpoint(session, customer, arm="holdout" if n % 10 == 0 else "treatment")
    with transaction(store) as session:
        first = simulate_outcomes(session, now=T0)
    with transaction(store) as session:
        second = simulate_outcomes(session, now=T0)  # the same draws: nothing new
        measure_outcomes(
            session,
            load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
            now=T0 + timedelta(days=7),
        )

    assert first.events > 300 and first.orders > 5
    assert (second.events, second.orders) == (0, 0)
    with store() as session:
        providers = set(session.scalars(select(MessageEvent.provider).distinct()))
        simulated_orders = session.scalar(
            select(func.count()).select_from(Order).where(Order.source == "simulated")
        )
        lines = outcome_lines(session, now=T0 + timedelta(days=7))
    assert providers == {"simulated"}
    assert simulated_orders == first.orders
    assert lines[0].split()[:4] == ["campaign", "variant", "arm", "planned"]
    assert any(line.startswith("review_request     -        holdout") for line in lines)
    assert lines[-1].startswith("uplift review_request: ")
