"""Every page is behind Airflow's login: anonymous 401, a token Airflow refuses 403, Viewer
reads, actions need Op (or Admin) and a form token only the pages can write."""

from __future__ import annotations

import pytest

from postpurchase.pages.auth import csrf_token_for

pytestmark = pytest.mark.airflow

PAGES = ["health", "customers", "campaigns", "kpis", "whatif"]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_gets_401_on_every_page(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert "log in to Airflow" in response.text


def test_a_token_airflow_did_not_sign_is_refused(client, tokens):
    header, payload, _signature = tokens["admin"].split(".")
    forged = f"{header}.{payload}.c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ"
    client.cookies.set("_token", forged)
    assert client.get("health").status_code == 403
    client.cookies.clear()
    assert client.get("health", headers={"Authorization": "Bearer x.y.z"}).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "user", "op", "admin"])
def test_every_role_reads_and_only_op_and_admin_may_act(as_role, role):
    response = as_role(role).get("health")
    assert response.status_code == 200
    assert f"{role}1 · " in response.text
    assert ("may act" in response.text) is (role in ("op", "admin"))


def test_the_bearer_header_works_like_the_cookie(client, tokens):
    response = client.get("health", headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert response.status_code == 200


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_below_op_an_action_is_refused_even_with_a_good_form_token(as_role, tokens, role):
    response = as_role(role).post(
        "health/retry",
        data={"reason": "x", "why": "customer asked", "csrf_token": csrf_token_for(tokens[role])},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "Op role" in response.text


def test_an_action_without_the_pages_form_token_is_refused(as_role, tokens):
    client = as_role("op")
    missing = client.post("health/retry", data={"reason": "x", "why": "w"})
    # a token made for another login does not fit this one
    other = client.post(
        "health/retry",
        data={"reason": "x", "why": "w", "csrf_token": csrf_token_for(tokens["admin"])},
    )
    assert missing.status_code == other.status_code == 403
    assert "did not come from these pages" in missing.text


def test_the_stylesheet_is_served_with_the_pages_and_holds_both_themes(client):
    css = client.get("static/pages.css")
    assert css.status_code == 200 and "prefers-color-scheme: dark" in css.text
