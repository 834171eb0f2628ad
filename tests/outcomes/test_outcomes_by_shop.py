"""``postpurchase report --shop``: one shop's funnel and KPIs, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from outcome_data import T0, customers, event, order, touchpoint
from sqlalchemy import update

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.cli import main
from postpurchase.store.database import transaction
from postpurchase.store.models import Customer, Order, Touchpoint
from postpurchase.tasks.outcomes import measure_outcomes

CONFIG = CampaignConfig.model_validate(
    {
        "campaigns": [
            {
                "id": "review_request",
                "description": "Ask for a review.",
                "trigger": "order.delivered",
                "channels": ["email"],
                "template": "review_request",
                "consent": "marketing",
            }
        ]
    }
)
NORDIC = "northwind-nordic.myshopify.com"


def _report(*args: str) -> dict:
    since = (datetime.now(UTC) - T0).days + 1
    result = CliRunner().invoke(main, ["report", "--since", f"{since}d", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_shops_report_counts_its_own_messages_and_customers(store, db_url):
    with transaction(store) as session:
        default_ids = customers(session, 6)
        nordic_ids = customers(session, 4, start=100)
        session.execute(update(Customer).where(Customer.id.in_(nordic_ids)).values(shop=NORDIC))
        for customer in default_ids + nordic_ids:
            tp = touchpoint(session, customer)
            if customer in nordic_ids[:2] or customer == default_ids[0]:
                event(session, tp, "click", T0 + timedelta(hours=1), url="https://shop/x")
                order(session, customer, T0 + timedelta(days=1), "40.00")
        session.execute(
            update(Touchpoint).where(Touchpoint.customer_id.in_(nordic_ids)).values(shop=NORDIC)
        )
        session.execute(update(Order).where(Order.customer_id.in_(nordic_ids)).values(shop=NORDIC))
    with transaction(store) as session:
        measure_outcomes(session, CONFIG, now=T0 + timedelta(days=3))

    everyone = _report()
    nordic = _report("--shop", "Northwind-Nordic.myshopify.com")
    default = _report("--shop", "")

    def funnel(report: dict) -> tuple[int, int, int, str]:
        (row,) = report["campaigns"]
        return row["sent"], row["clicked"], row["converted"], row["revenue"]

    assert everyone["shop"] is None
    assert funnel(everyone) == (10, 3, 3, "120.00")
    assert nordic["shop"] == NORDIC
    assert funnel(nordic) == (4, 2, 2, "80.00")
    assert funnel(default) == (6, 1, 1, "40.00")
    assert nordic["kpis"]["customers"] == 2  # its customers with a paid order
    assert default["kpis"]["customers"] == 1

    table = CliRunner().invoke(main, ["report", "--shop", NORDIC, "--since", "all"])
    assert table.exit_code == 0, table.output
    assert table.output.startswith(f"shop {NORDIC}\n")
