"""A POST to an intake route skips the app's middleware and router (``_WebhookApp``): what
that stack did for these routes still happens."""

from __future__ import annotations

from datetime import datetime

import pytest
from deliveries import intake_settings
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from postpurchase.webhooks.app import create_app

JSON = {"Content-Type": "application/json"}


def test_other_methods_on_an_intake_path_are_still_405(db_url, store):
    with TestClient(create_app(intake_settings(db_url), session_factory=store)) as client:
        response = client.get("/webhooks/shopify")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_a_bug_in_an_intake_route_is_answered_500_and_raised_to_the_server(db_url, store):
    def broken_clock() -> datetime:
        raise RuntimeError("the clock broke")

    app = create_app(intake_settings(db_url), session_factory=store, clock=broken_clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/webhooks/shopify", content=b"{}", headers=JSON)
    assert (response.status_code, response.text) == (500, "Internal Server Error")

    with TestClient(app) as client, pytest.raises(RuntimeError, match="the clock broke"):
        client.post("/webhooks/shopify", content=b"{}", headers=JSON)


def test_an_intake_route_is_found_below_the_path_the_app_is_mounted_at(db_url, store):
    app = create_app(intake_settings(db_url), session_factory=store)
    outer = Starlette(routes=[Mount("/postpurchase", app=app)])
    with TestClient(outer) as client:
        response = client.post("/postpurchase/webhooks/shopify", content=b"{}", headers=JSON)

    # The intake's own answer (no signature), not the outer app's 404 or a 405.
    assert response.status_code == 401, response.text
    assert response.json()["status"] == "rejected"
