"""The shop selector in a real browser, inside Airflow, on two shops whose feeds share every
order and customer id: choosing a shop filters the page, in the shop's currency, and the
choice stays while one moves between the pages. A screenshot lands in var/screenshots/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pages.shop_data import fill_demo_shop, shop_settings
from pages.test_browser import Airflow, _logged_in, _shot, browser, serve_pages

pytestmark = [pytest.mark.slow, pytest.mark.airflow]
__all__ = ["browser"]  # the browser fixture, shared with the pages' other browser tests

NORDIC = "northwind-nordic.myshopify.com"
SHOPS = f"shops:\n  {NORDIC}:\n    name: Northwind Nordic\n    currency: NOK\n"


@pytest.fixture(scope="module")
def airflow(airflow_db: Path, _sqlite_template: Path, tmp_path_factory) -> Iterator[Airflow]:
    """One API server on the demo shop's month and the same month as Northwind Nordic's."""
    home = tmp_path_factory.mktemp("browser-shops")
    db = home / "shops.db"
    shutil.copyfile(_sqlite_template, db)
    shops = home / "shops.yaml"
    shops.write_text(SHOPS, encoding="utf-8")
    settings = shop_settings(f"sqlite:///{db}", home / "var", shops_file=shops)
    now = datetime.now(UTC)
    fill_demo_shop(settings, orders=20, now=now)
    fill_demo_shop(settings, orders=20, now=now, shop=NORDIC)
    with serve_pages(db, home, env={"POSTPURCHASE_SHOPS_FILE": str(shops)}) as server:
        yield server


def test_a_chosen_shop_filters_the_pages_and_stays_chosen(browser, airflow):
    context = _logged_in(browser, airflow, "viewer")
    page = context.new_page()
    page.goto(airflow.pages("campaigns"))
    page.get_by_label("shop shown").select_option(NORDIC)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(rf"campaigns\?shop={re.escape(NORDIC)}$"))
    assert " NOK" in page.locator("#campaigns").inner_text()
    _shot(page, "campaigns-one-shop")

    page.get_by_role("link", name="KPIs").click()
    page.wait_for_url(re.compile(rf"kpis\?shop={re.escape(NORDIC)}$"))
    assert f"Northwind Nordic ({NORDIC}) alone" in page.inner_text("body")

    # the same customer (the same email, the same Shopify id) in both shops
    page.goto(airflow.pages(f"customers/{airflow.customer_id}"))
    email = page.locator(".card").first.locator("div").nth(1).inner_text()
    page.goto(airflow.pages("customers"))
    page.get_by_label("search customers").fill(email)
    page.get_by_role("button", name="Search").click()
    assert page.locator("#found tr").count() == 3  # the heading and one row per shop
    page.get_by_label("shop shown").select_option(NORDIC)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"shop="))
    rows = page.locator("#found tr")
    assert rows.count() == 2 and "Northwind Nordic" in rows.nth(1).inner_text()
    context.close()
