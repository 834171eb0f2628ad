"""The pages in a real browser, inside a real Airflow API server with the plugin loaded, on a
database filled by the demo feed: log in as Airflow's UI does, open each page, act as Op, be
refused as Viewer and anonymous. Screenshots of each page land in var/screenshots/.

Debian's Chromium is driven by Playwright (no browser is downloaded). Without it the tests are
skipped here, with the reason; CI sets POSTPURCHASE_BROWSER_TESTS=required and fails instead.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pages.shop_data import SECRET, fill_demo_shop, shop_settings
from servers import free_port, stop, wait_until_healthy
from sqlalchemy import select

from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import open_store
from postpurchase.store.models import Customer, Touchpoint, TouchpointStatus

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
USERS = {"admin": "admin", "viewer": "viewer", "op": "op"}

if not CHROMIUM.exists():
    if os.environ.get("POSTPURCHASE_BROWSER_TESTS") == "required":
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(
        f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True
    )

pytestmark = [pytest.mark.slow, pytest.mark.airflow]


@dataclass(frozen=True)
class Airflow:
    url: str
    passwords: dict[str, str]
    customer_id: int

    def token(self, user: str) -> str:
        answer = httpx.post(
            f"{self.url}/auth/token",
            json={"username": user, "password": self.passwords[user]},
            timeout=30,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def pages(self, path: str) -> str:
        return f"{self.url}/postpurchase/pages/{path}"


@contextmanager
def serve_pages(db: Path, home: Path, *, env: dict[str, str] | None = None) -> Iterator[Airflow]:
    """An Airflow API server with the plugin, on the engine's database ``db``."""
    with open_store(shop_settings(f"sqlite:///{db}", home / "var"))() as session:
        customer_id = session.scalars(
            select(Touchpoint.customer_id)
            .join(Customer, Customer.id == Touchpoint.customer_id)
            .where(Touchpoint.status == TouchpointStatus.SENT, Customer.email.is_not(None))
            .order_by(Touchpoint.id)
            .limit(1)
        ).one()
    port = free_port()
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{u}" for u in USERS),
        "AIRFLOW__API_AUTH__JWT_SECRET": os.environ.get(
            "AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(64)
        ),
        "POSTPURCHASE_DATABASE_URL": f"sqlite:///{db}",
        "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRET": SECRET,
        "POSTPURCHASE_VAR_DIR": str(home / "var"),
        **(env or {}),
    }
    log = home / "api-server.log"
    airflow_cli = str(Path(sys.executable).with_name("airflow"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                airflow_cli,
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{url}/api/v2/monitor/health", process, log, timeout=180)
        generated = airflow_home / "simple_auth_manager_passwords.json.generated"
        passwords = json.loads(generated.read_text())
        yield Airflow(url, {u: passwords[u] for u in USERS}, customer_id)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def airflow(airflow_db: Path, _sqlite_template: Path, tmp_path_factory) -> Iterator[Airflow]:
    """One API server for the module, on the demo shop's month."""
    home = tmp_path_factory.mktemp("browser-shop")
    db = home / "shop.db"
    shutil.copyfile(_sqlite_template, db)
    fill_demo_shop(shop_settings(f"sqlite:///{db}", home / "var"))
    with serve_pages(db, home) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _logged_in(browser, airflow: Airflow, user: str | None):
    """A browser session; with ``user``, logged in as the Airflow UI leaves it (_token cookie)."""
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    if user is not None:
        context.add_cookies([{"name": "_token", "value": airflow.token(user), "url": airflow.url}])
    return context


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_anonymous_is_refused_every_page(browser, airflow):
    context = _logged_in(browser, airflow, None)
    page = context.new_page()
    for path in ("health", "customers", "campaigns", "kpis", "whatif"):
        response = page.goto(airflow.pages(path))
        assert response.status == 401
        assert "log in to Airflow" in page.inner_text("body")
    context.close()


def test_the_pages_open_inside_the_airflow_ui(browser, airflow):
    context = _logged_in(browser, airflow, "viewer")
    page = context.new_page()
    page.goto(f"{airflow.url}/plugin/postpurchase-health")
    frame = page.frame_locator("iframe")
    frame.get_by_text("Inbox lag").wait_for(timeout=60_000)
    assert page.locator("iframe").get_attribute("src") == "/postpurchase/pages/health"
    assert page.get_by_text("Plugins").count() >= 1  # the UI's own navigation around it
    _shot(page, "airflow-ui-health")
    context.close()


def test_a_viewer_sees_every_page_and_cannot_act(browser, airflow):
    context = _logged_in(browser, airflow, "viewer")
    page = context.new_page()
    page.goto(airflow.pages("health"))
    assert "viewer · read only" in page.inner_text("nav")
    assert page.locator("#inbox-lag").is_visible() and page.locator("svg.chart").count() == 1
    _shot(page, "health")

    page.goto(airflow.pages("customers"))
    page.get_by_label("search customers").fill(f"{airflow.customer_id}")
    page.goto(airflow.pages(f"customers/{airflow.customer_id}"))
    assert page.locator("#timeline li").count() > 0
    assert page.locator("#timeline").get_by_text("sent").count() > 0
    assert page.get_by_role("button", name="Adjust points").count() == 0
    _shot(page, "customer")
    # a forged post, even with the page's own form token, is refused for a Viewer
    token = context.cookies()[0]["value"]
    from postpurchase.pages.auth import csrf_token_for

    refused = context.request.post(
        airflow.pages(f"customers/{airflow.customer_id}/points"),
        form={"points": "100", "why": "try", "csrf_token": csrf_token_for(token)},
    )
    assert refused.status == 403

    page.goto(airflow.pages("campaigns"))
    assert page.locator("#campaigns tr").count() > 3
    _shot(page, "campaigns")
    page.get_by_role("link", name="review_request").click()
    assert re.search(r"campaigns/review_request$", page.url)
    assert page.locator("iframe.email").count() >= 1
    _shot(page, "campaign")

    page.goto(airflow.pages("kpis"))
    assert page.locator("svg.chart").count() == 5
    _shot(page, "kpis")

    page.goto(airflow.pages("whatif"))
    text = page.locator("#text")
    text.fill(
        text.input_value().replace(
            "id: review_request\n", "id: review_request\n    enabled: false\n", 1
        )
    )
    page.get_by_role("button", name="Replay").click()
    row = page.locator("#whatif-result tr", has_text="review_request")
    assert row.locator("td").nth(1).inner_text() == "off"
    _shot(page, "whatif")
    context.close()


def test_op_adjusts_points_and_the_page_records_who_and_why(browser, airflow):
    context = _logged_in(browser, airflow, "op")
    page = context.new_page()
    page.goto(airflow.pages(f"customers/{airflow.customer_id}"))
    before = int(page.locator("#balance .figure").inner_text())
    form = page.locator("#adjust-points")
    form.get_by_label("points to add or take away").fill("25")
    form.get_by_label("why adjust points").fill("goodwill for a late parcel")
    form.get_by_role("button", name="Adjust points").click()
    page.wait_for_url(re.compile(r"notice="))
    assert "+25 points" in page.locator(".notice").inner_text()
    assert int(page.locator("#balance .figure").inner_text()) == before + 25
    actions = page.locator("#actions").inner_text()
    assert "op" in actions and "goodwill for a late parcel" in actions
    _shot(page, "customer-after-action")
    context.close()


def test_airflow_lists_the_pages_as_external_views(airflow):
    answer = httpx.get(
        f"{airflow.url}/api/v2/plugins",
        headers={"Authorization": f"Bearer {airflow.token('viewer')}"},
        timeout=30,
    )
    views = {
        view["url_route"]: view["href"]
        for plugin in answer.json()["plugins"]
        for view in plugin["external_views"]
    }
    assert views == {
        f"postpurchase-{page}": f"/postpurchase/pages/{page}"
        for page in ("health", "customers", "campaigns", "kpis", "whatif")
    }
