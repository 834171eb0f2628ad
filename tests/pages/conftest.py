"""Page fixtures: Airflow's simple auth manager with a token per role, a shop filled by the
demo feed, and the pages' app on it (``client``), asked as anyone with ``as_role``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pages.shop_data import fill_demo_shop, shop_settings

from postpurchase.pages.airflow_runs import AirflowState, DagRunSeen
from postpurchase.pages.app import create_pages_app
from postpurchase.pages.auth import AirflowGatekeeper
from postpurchase.settings import Settings

ROLES = ("viewer", "user", "op", "admin")


@pytest.fixture(scope="session")
def auth_manager(airflow_db: Path) -> object:
    """Airflow's simple auth manager (its revoked-token check reads Airflow's database)."""
    # A key as long as the signature (Airflow generates a shorter one, and PyJWT warns).
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_hex(64)
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    return SimpleAuthManager()


@pytest.fixture(scope="session")
def tokens(auth_manager) -> dict[str, str]:
    """A JWT per simple-auth-manager role, signed as Airflow's /auth/token signs them."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return {
        role: auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"{role}1", role=role))
        for role in ROLES
    }


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return shop_settings(db_url, tmp_path / "var")


@pytest.fixture
def shop(settings: Settings) -> datetime:
    """The demo shop's month, processed; returns the moment it was filled."""
    return fill_demo_shop(settings)


AIRFLOW_SEEN = AirflowState(
    runs=[
        DagRunSeen("process_purchase_events", False, "manual__1", "success", "manual", None, None)
    ]
)


@pytest.fixture
def client(settings: Settings, auth_manager) -> Iterator[TestClient]:
    app = create_pages_app(
        settings, gatekeeper=AirflowGatekeeper(auth_manager), airflow=lambda: AIRFLOW_SEEN
    )
    api_server = FastAPI()  # mounted where the plugin mounts it, so relative links resolve
    api_server.mount("/postpurchase/pages", app)
    with TestClient(api_server, base_url="http://testserver/postpurchase/pages/") as test_client:
        yield test_client


@pytest.fixture
def as_role(client: TestClient, tokens: dict[str, str]):
    """The client logged in as ``role`` the way the Airflow UI logs in: the _token cookie."""

    def login(role: str) -> TestClient:
        client.cookies.clear()
        client.cookies.set("_token", tokens[role])
        return client

    return login
