"""The pages of an engine serving two shops whose feeds share every order and customer id
(SQLite and PostgreSQL): a shop selector lists them, keeps the choice on every link, and each
page shows the chosen shop's figures alone, in its currency."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pages.shop_data import fill_demo_shop, shop_settings
from sqlalchemy import func, select

from postpurchase.demo.shop_payloads import SHOP as DEMO
from postpurchase.outcomes.kpis import shop_kpis
from postpurchase.outcomes.weekly import weekly_series
from postpurchase.pages.campaign_data import campaigns_overview
from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import shop_directory
from postpurchase.store.models import ClaimStatus, Customer, InboxEvent, Touchpoint
from postpurchase.store.page_actions import PageAction

pytestmark = pytest.mark.airflow

NORDIC = "northwind-nordic.myshopify.com"
SHOPS = f"shops:\n  {NORDIC}:\n    name: Northwind Nordic\n    currency: NOK\n"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    shops = tmp_path / "shops.yaml"
    shops.write_text(SHOPS, encoding="utf-8")
    return shop_settings(db_url, tmp_path / "var", shops_file=shops)


@pytest.fixture
def two_shops(settings: Settings) -> datetime:
    """The demo shop (not in shops.yaml: the engine's settings) and Northwind Nordic, each
    with the same feed: the same Shopify order and customer ids."""
    now = datetime.now(UTC)
    fill_demo_shop(settings, orders=15, now=now)
    fill_demo_shop(settings, orders=15, now=now, shop=NORDIC)
    return now


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def test_the_selector_lists_the_shops_and_every_link_keeps_the_choice(as_role, two_shops):
    viewer = as_role("viewer")
    html = viewer.get("health").text
    assert 'id="shop-choice"' in html and ">All shops</option>" in html
    assert f'<option value="{DEMO}">Northwind Goods ({DEMO})</option>' in html
    assert f'<option value="{NORDIC}">Northwind Nordic ({NORDIC})</option>' in html
    for path in ("health", "customers", "campaigns", "kpis", "whatif"):
        html = viewer.get(f"{path}?shop={NORDIC}").text
        assert f'<option value="{NORDIC}" selected>' in html, path
        for target in ("health", "customers", "campaigns", "kpis", "whatif"):
            assert f'href="./{target}?shop={NORDIC}"' in html, (path, target)
    # "All shops" is no parameter at all
    assert 'href="./kpis"' in viewer.get("health?shop=*").text


def test_customers_sharing_ids_across_shops_are_kept_apart(as_role, two_shops, store):
    with store() as session:
        external_id, ids = session.execute(
            select(Customer.external_id, func.count())
            .group_by(Customer.external_id)
            .having(func.count() == 2)
            .limit(1)
        ).one()
        by_shop = {
            c.shop: c.id
            for c in session.scalars(select(Customer).where(Customer.external_id == external_id))
        }
    assert set(by_shop) == {DEMO, NORDIC} and ids == 2
    viewer = as_role("viewer")
    both = viewer.get("customers", params={"q": external_id}).text
    assert sorted(map(int, re.findall(r'href="./customers/(\d+)"', both))) == sorted(
        by_shop.values()
    )
    nordic = viewer.get("customers", params={"q": external_id, "shop": NORDIC}).text
    assert re.findall(r'href="./customers/(\d+)\?shop=([^"]+)"', nordic) == [
        (str(by_shop[NORDIC]), NORDIC)
    ]
    assert f'<input type="hidden" name="q" value="{external_id}">' in nordic  # kept on a switch

    page = viewer.get(f"customers/{by_shop[NORDIC]}", params={"shop": NORDIC})
    assert page.status_code == 200 and "Northwind Nordic" in page.text
    other = viewer.get(f"customers/{by_shop[DEMO]}", params={"shop": NORDIC})
    assert other.status_code == 404


def test_campaign_figures_are_each_shops_and_in_its_currency(as_role, two_shops, settings, store):
    directory = shop_directory(settings)
    with store() as session:
        every = campaigns_overview(session, settings, now=two_shops)
        apart = [
            campaigns_overview(
                session, settings, now=two_shops, shop=replace(directory.get(key), key=key)
            )
            for key in (DEMO, NORDIC)
        ]
    assert [o["currency"] for o in apart] == ["USD", "NOK"]
    totals = {c["id"]: c["last_30"].get("sent", 0) for c in every["campaigns"]}
    assert sum(totals.values()) > 0
    for campaign_id, sent in totals.items():
        parts = [next(c for c in o["campaigns"] if c["id"] == campaign_id) for o in apart]
        assert sum(p["last_30"].get("sent", 0) for p in parts) == sent, campaign_id
        assert all(p["last_30"].get("sent", 0) < sent for p in parts if sent), campaign_id

    viewer = as_role("viewer")
    assert " NOK" in viewer.get("campaigns", params={"shop": NORDIC}).text
    with store() as session:
        campaign_id = session.scalars(
            select(Touchpoint.campaign_id).where(Touchpoint.shop == NORDIC).limit(1)
        ).one()
    html = viewer.get(f"campaigns/{campaign_id}", params={"shop": NORDIC}).text
    listed = {int(i) for i in re.findall(r'href="../customers/(\d+)\?shop=', html)}
    assert listed
    with store() as session:
        shops = set(session.scalars(select(Customer.shop).where(Customer.id.in_(listed))))
    assert shops == {NORDIC}


def test_kpis_of_one_shop_are_computed_for_it(as_role, two_shops, store):
    with store() as session:
        nordic = shop_kpis(session, now=two_shops, shop=NORDIC)
        demo = shop_kpis(session, now=two_shops, shop=DEMO)
        weekly = [weekly_series(session, now=two_shops, shop=s) for s in (None, DEMO, NORDIC)]
    every, *apart = ([n for _, n in series["orders"]] for series in weekly)
    assert sum(every) > 0 and [a + b for a, b in zip(*apart, strict=True)] == every
    viewer = as_role("viewer")

    def paying(html: str) -> int:
        return int(re.search(r"of (\d+) paying customers", html).group(1))

    html = viewer.get("kpis", params={"shop": NORDIC}).text
    assert f"Northwind Nordic ({NORDIC}) alone, computed now" in html
    assert paying(html) == nordic.customers > 0
    assert paying(viewer.get("kpis").text) == nordic.customers + demo.customers


def test_a_retry_from_one_shops_health_puts_back_that_shops_events_only(as_role, two_shops, store):
    reason = "order.paid: no order id"
    with store() as session:
        for shop in (DEMO, NORDIC):
            event = session.scalars(
                select(InboxEvent).where(InboxEvent.shop == shop).limit(1)
            ).one()
            event.status, event.last_error = ClaimStatus.FAILED, reason
        session.commit()
    op = as_role("op")
    page = op.get("health", params={"shop": NORDIC}).text
    assert f'<tr><td>{reason}</td><td class="num">1</td>' in page  # not the other shop's
    answer = op.post(
        f"health/retry?shop={NORDIC}",
        data={"reason": reason, "why": "fixed", "csrf_token": _csrf(page)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"../health?shop={NORDIC}&")
    with store() as session:
        failed = session.scalars(select(InboxEvent.shop).where(InboxEvent.status == "failed"))
        assert list(failed) == [DEMO]
        action = session.scalars(select(PageAction)).one()
    assert action.detail == {"last_error": reason, "events": 1, "shop": NORDIC}
