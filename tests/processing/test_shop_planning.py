"""Planning per shop (SQLite and PostgreSQL): a shop's campaign overrides and its time zone
hold for its customers only."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fakes.fixtures import add_customer, add_order
from sqlalchemy import select, update

from postpurchase.campaigns.config import load_campaigns
from postpurchase.campaigns.decisions import Occurrence
from postpurchase.processing.planning import order_subject, plan_touchpoints
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.models import Touchpoint

NORDIC = "northwind-nordic.myshopify.com"
TOKYO = "northwind-japan.myshopify.com"
# Friday 09:30 UTC: 10:30 in Oslo, 18:30 in Tokyo
DELIVERED = datetime(2026, 3, 6, 9, 30, tzinfo=UTC)

OVERRIDES = f"""
shops:
  {NORDIC}:
    campaigns:
      delivery_checkin: {{enabled: false}}
      review_request: {{delay: 14d}}
"""


def _config(tmp_path):
    path = tmp_path / "campaigns.yaml"
    shipped = (PROJECT_ROOT / "config" / "campaigns.yaml").read_text()
    # no control group: every customer here gets the messages
    path.write_text(shipped.replace("holdout: 10%", "holdout: 0%") + OVERRIDES)
    return load_campaigns(path).with_shop_zones(
        {NORDIC: ZoneInfo("Europe/Oslo"), TOKYO: ZoneInfo("Asia/Tokyo")}
    )


def _delivered(store, shop: str, time_zone: str | None = None) -> tuple[int, Occurrence]:
    with transaction(store) as session:
        person = add_customer(session, shop=shop, time_zone=time_zone)
        order = add_order(session, person, shop=shop, delivered_at=DELIVERED)
        return order.id, Occurrence(
            "order.delivered", DELIVERED, person.id, order.id, order_subject(order.id)
        )


def _due(store, order_id: int) -> dict[tuple[str, int], tuple[datetime, str]]:
    with store() as session:
        rows = session.execute(
            select(
                Touchpoint.campaign_id, Touchpoint.step, Touchpoint.due_at, Touchpoint.shop
            ).where(Touchpoint.order_id == order_id)
        ).all()
    return {(c, step): (due, shop) for c, step, due, shop in rows}


def test_overrides_and_zones_apply_to_their_shop_only(store, tmp_path):
    config = _config(tmp_path)
    default_order, default = _delivered(store, "")
    nordic_order, nordic = _delivered(store, NORDIC)
    tokyo_order, tokyo = _delivered(store, TOKYO)
    paris_order, paris = _delivered(store, NORDIC, time_zone="Europe/Paris")

    with transaction(store) as session:
        plan_touchpoints(
            session, [default, nordic, tokyo, paris], config, shop_zone=ZoneInfo("UTC")
        )

    default_due = _due(store, default_order)
    # the default shop: UTC; 09:30 + 1 day is before the 10:00 window: 10:00
    assert default_due[("delivery_checkin", 0)] == (datetime(2026, 3, 7, 10, 0, tzinfo=UTC), "")
    assert default_due[("review_request", 0)][0] == datetime(2026, 3, 13, 10, 0, tzinfo=UTC)

    # the Japanese shop's customers without a zone: 18:30 Tokyo + 1 day is inside the window
    tokyo_due = _due(store, tokyo_order)
    assert tokyo_due[("delivery_checkin", 0)] == (datetime(2026, 3, 7, 9, 30, tzinfo=UTC), TOKYO)

    # the Nordic shop: no check-in, the review request after 14 days at 10:30 Oslo (CET)
    nordic_due = _due(store, nordic_order)
    assert ("delivery_checkin", 0) not in nordic_due
    assert nordic_due[("review_request", 0)] == (
        datetime(2026, 3, 20, 9, 30, tzinfo=UTC),
        NORDIC,
    )
    # a customer of that shop with a zone of their own keeps it (10:30 Paris, CET)
    paris_due = _due(store, paris_order)
    assert paris_due[("review_request", 0)][0] == datetime(2026, 3, 20, 9, 30, tzinfo=UTC)
    assert ("delivery_checkin", 0) not in paris_due


def test_a_campaign_enabled_for_one_shop_only_is_planned_for_it(store, tmp_path):
    path = tmp_path / "campaigns.yaml"
    text = (PROJECT_ROOT / "config" / "campaigns.yaml").read_text()
    text = text.replace(
        "  - id: delivery_checkin\n", "  - id: delivery_checkin\n    enabled: false\n", 1
    )
    path.write_text(
        text + f"shops:\n  {TOKYO}:\n    campaigns:\n      delivery_checkin: {{enabled: true}}\n"
    )
    config = load_campaigns(path)
    default_order, default = _delivered(store, "")
    tokyo_order, tokyo = _delivered(store, TOKYO)

    with transaction(store) as session:
        plan_touchpoints(session, [default, tokyo], config, shop_zone=ZoneInfo("UTC"))

    assert ("delivery_checkin", 0) not in _due(store, default_order)
    assert ("delivery_checkin", 0) in _due(store, tokyo_order)


def test_replan_keeps_each_shops_overrides_and_zone(store, tmp_path):
    from postpurchase.processing.replan import replan_campaign

    config = _config(tmp_path)
    default_order, default = _delivered(store, "")
    nordic_order, nordic = _delivered(store, NORDIC)
    with transaction(store) as session:
        plan_touchpoints(session, [default, nordic], config, shop_zone=ZoneInfo("UTC"))
        # someone moved them by hand; the replan puts each back where its shop wants it
        session.execute(update(Touchpoint).values(due_at=DELIVERED))

    with transaction(store) as session:
        counts = replan_campaign(session, config, "review_request", shop_zone=ZoneInfo("UTC"))

    assert (counts.moved, counts.cancelled) == (4, 0)  # two steps each
    assert _due(store, default_order)[("review_request", 0)][0] == datetime(
        2026, 3, 13, 10, 0, tzinfo=UTC
    )
    assert _due(store, nordic_order)[("review_request", 0)][0] == datetime(
        2026, 3, 20, 9, 30, tzinfo=UTC
    )
