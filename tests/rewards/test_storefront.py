"""Where customers spend: the storefront API (Shopify app proxy or API key) and the hosted
rewards page, through the real app, database and a fake Shopify Admin API."""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlencode

import pytest
from fakes.fake_shopify_admin import ACCESS_TOKEN
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from postpurchase.loyalty.ledger import adjust, balance
from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.rewards.page import rewards_link
from postpurchase.rewards.storefront import proxy_signature
from postpurchase.settings import Settings
from postpurchase.store.database import transaction
from postpurchase.store.models import Customer, Redemption
from postpurchase.webhooks.app import create_app

APP_SECRET = "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"
SIGNING = "rewards-page-test-secret"
WIDGET_KEY = "pk_live_1f0e9d8c7b6a5f4e3d2c1b0a"
SHOP = "northwind.myshopify.com"


@pytest.fixture
def app_client(db_url, store, shopify):
    """``app_client(**settings)``: a client of the app, redeeming on the fake Shopify."""
    with ExitStack() as clients:

        def make(**overrides: Any) -> TestClient:
            values: dict[str, Any] = {
                "database_url": db_url,
                "shopify_webhook_secret": APP_SECRET,
                "signing_secret": SIGNING,
                "shop_url": "https://northwind-goods.example",
                "rewards_platform": "shopify",
                "shopify_shop_domain": SHOP,
                "shopify_admin_token": ACCESS_TOKEN,
                "shopify_admin_url": shopify.url,
                "storefront_api_keys": {"widget": WIDGET_KEY},
                "storefront_api_scopes": {"widget": ["read", "redeem"]},
                "storefront_requests_per_minute": 8,
            }
            app = create_app(Settings(**{**values, **overrides}), session_factory=store)
            return clients.enter_context(TestClient(app))

        yield make


@pytest.fixture
def client(app_client):
    return app_client()


def proxied(customer: str, *, secret: str = APP_SECRET, stamp: int | None = None, **extra) -> str:
    params = {
        "shop": SHOP,
        "logged_in_customer_id": customer,
        "path_prefix": "/apps/rewards",
        "timestamp": str(stamp or int(time.time())),
        **extra,
    }
    params["signature"] = proxy_signature(params.items(), secret.encode())
    return urlencode(params)


def test_signature_matches_shopifys_documented_example():
    # The example of Shopify's "Authenticate app proxies" page, shared secret "hush".
    params = [
        ("extra", "1"),
        ("extra", "2"),
        ("shop", "shop-name.myshopify.com"),
        ("logged_in_customer_id", "1"),
        ("path_prefix", "/apps/awesome_reviews"),
        ("timestamp", "1317327555"),
    ]
    assert (
        proxy_signature(params, b"hush")
        == "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
    )


def test_account_through_the_app_proxy(client, customer_with):
    customer_with(650, shop=SHOP)
    answer = client.get(f"/storefront/proxy/account?{proxied('7208815100001')}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["balance"] == 650 and body["tier"] == "Bronze" and body["next_tier"] == "Silver"
    offered = {r["name"]: r["affordable"] for r in body["rewards"]}
    assert offered["five_off"] is True and offered["free_tote"] is False
    assert "vip_early_access" not in offered and body["codes"] == []
    assert body["referral_code"].startswith("REF-")
    again = client.get(f"/storefront/proxy/account?{proxied('7208815100001')}").json()
    assert again["referral_code"] == body["referral_code"]


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        (lambda: proxied("7208815100001", secret="another-app"), 401, "signature does not match"),
        (lambda: proxied("7208815100001", stamp=int(time.time()) - 3600), 401, "too old"),
        (lambda: proxied(""), 401, "no customer is logged in"),
        (lambda: proxied("999"), 404, "no loyalty account yet"),
        (
            lambda: proxied("7208815100001").replace("7208815100001", "7208815100002", 1),
            401,
            "signature does not match",
        ),
    ],
)
def test_app_proxy_refusals(client, customer_with, query, status, reason):
    customer_with(650, shop=SHOP)
    customer_with(900, shop=SHOP)
    answer = client.get(f"/storefront/proxy/account?{query()}")
    assert answer.status_code == status and reason in answer.json()["error"]


def test_redeem_through_the_app_proxy_is_idempotent(client, store, customer_with, shopify):
    customer = customer_with(1100, shop=SHOP)
    url = f"/storefront/proxy/redeem?{proxied('7208815100001')}"
    first = client.post(url, json={"reward": "five_off"}, headers={"Idempotency-Key": "tab-1"})
    assert first.status_code == 201, first.text
    code = first.json()["code"]
    assert code in shopify.codes()
    again = client.post(url, json={"reward": "five_off"}, headers={"Idempotency-Key": "tab-1"})
    assert again.status_code == 201 and again.json()["code"] == code
    short = client.post(url, json={"reward": "five_off", "key": "tab-2"})
    assert short.status_code == 201  # 600 left: a second one
    broke = client.post(url, json={"reward": "five_off", "key": "tab-3"})
    assert broke.status_code == 409 and "balance is 100" in broke.json()["error"]
    with transaction(store) as session:
        assert balance(session, customer) == 100
    account = client.get(f"/storefront/proxy/account?{proxied('7208815100001')}").json()
    assert {c["code"] for c in account["codes"]} == set(shopify.codes())


def test_api_key_scopes_and_customer(client, app_client, customer_with):
    customer_with(700, source="woocommerce")
    auth = {"Authorization": f"Bearer {WIDGET_KEY}"}
    url = "/storefront/api/account?customer=woocommerce:7208815100001"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer pk_wrong"}).status_code == 401
    answer = client.get(url, headers=auth)
    assert answer.status_code == 200 and answer.json()["balance"] == 700
    read_only = app_client(storefront_api_scopes={"widget": ["read"]})
    refused = read_only.post(
        "/storefront/api/redeem?customer=woocommerce:7208815100001",
        json={"reward": "five_off"},
        headers=auth,
    )
    assert refused.status_code == 403 and "redeem scope" in refused.json()["error"]


def test_cors_allows_the_shops_origin_only(client, customer_with):
    customer_with(700, source="woocommerce")
    auth = {"Authorization": f"Bearer {WIDGET_KEY}"}
    url = "/storefront/api/account?customer=woocommerce:7208815100001"
    ours = client.get(url, headers=auth | {"Origin": "https://northwind-goods.example"})
    assert ours.headers["Access-Control-Allow-Origin"] == "https://northwind-goods.example"
    theirs = client.get(url, headers=auth | {"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in theirs.headers
    preflight = client.options(
        "/storefront/api/redeem",
        headers={
            "Origin": "https://northwind-goods.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert preflight.status_code == 204
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    other = client.options("/storefront/api/redeem", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_requests_are_limited_per_customer(client, customer_with):
    customer_with(700, shop=SHOP)
    customer_with(700, shop=SHOP)
    statuses = [
        client.get(f"/storefront/proxy/account?{proxied('7208815100001')}").status_code
        for _ in range(10)
    ]
    assert statuses == [200] * 8 + [429, 429]
    limited = client.get(f"/storefront/proxy/account?{proxied('7208815100001')}")
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert client.get(f"/storefront/proxy/account?{proxied('7208815100002')}").status_code == 200


def test_the_rewards_page_shows_and_redeems_only_on_post(client, store, customer_with, shopify):
    customer = customer_with(650)
    link = rewards_link("http://testserver", SIGNING.encode(), customer, 41)
    page = client.get(link)
    assert page.status_code == 200
    text = page.text
    assert (
        "650 points" in text and "Bronze" in text and "Silver next: spend 250.00 USD more" in text
    )
    assert "Get it for 500 points" in text and "1000 more points needed" not in text
    assert "A free canvas tote" in text and "850 more points needed" in text
    assert "Your referral code: <span class='code'>REF-" in text
    client.get(link)
    assert shopify.codes() == []  # showing the page (as a mail scanner does) spends nothing
    key = re.search(r"name='key' value='([^']+-five_off)'", text).group(1)
    done = client.post(link, data={"reward": "five_off", "key": key})
    assert done.status_code == 200 and shopify.codes()[0] in done.text
    resubmitted = client.post(link, data={"reward": "five_off", "key": key})
    assert shopify.codes()[0] in resubmitted.text and len(shopify.codes()) == 1
    with transaction(store) as session:
        assert balance(session, customer) == 150
        assert session.scalar(select(func.count()).select_from(Redemption)) == 1
    forged = link.rsplit("/", 1)[0] + "/" + sign(b"another-key", LinkClaim("rewards", customer, 41))
    assert client.get(forged).status_code == 400
    unsubscribe = sign(SIGNING.encode(), LinkClaim("unsubscribe", customer, 41))
    assert client.get(f"/rewards/{unsubscribe}").status_code == 400


def test_a_customer_id_known_in_two_shops_is_each_shops_own(client, store):
    """Shopify customer ids are the shop's: the proxy's signed ``shop`` picks the account; an
    API key must name the shop when the id is known in several."""
    with transaction(store) as session:
        for shop, points in ((SHOP, 650), ("second-store.myshopify.com", 80)):
            customer = Customer(source="shopify", shop=shop, external_id="7208815100001")
            session.add(customer)
            session.flush()
            adjust(session, customer_id=customer.id, points=points, reason="opening balance")
    answer = client.get(f"/storefront/proxy/account?{proxied('7208815100001')}")
    assert answer.status_code == 200 and answer.json()["balance"] == 650
    auth = {"Authorization": f"Bearer {WIDGET_KEY}"}
    url = "/storefront/api/account?customer=shopify:7208815100001"
    ambiguous = client.get(url, headers=auth)
    assert ambiguous.status_code == 409
    assert "second-store.myshopify.com" in ambiguous.json()["error"]
    named = client.get(f"{url}&shop=second-store.myshopify.com", headers=auth)
    assert named.status_code == 200 and named.json()["balance"] == 80


def test_redeeming_for_an_unknown_or_ambiguous_customer_spends_nothing(client, store, shopify):
    with transaction(store) as session:
        for shop in (SHOP, "second-store.myshopify.com"):
            customer = Customer(source="shopify", shop=shop, external_id="7208815100001")
            session.add(customer)
            session.flush()
            adjust(session, customer_id=customer.id, points=650, reason="opening balance")
    unknown = client.post(f"/storefront/proxy/redeem?{proxied('999')}", json={"reward": "five_off"})
    assert unknown.status_code == 404 and "no loyalty account yet" in unknown.json()["error"]
    auth = {"Authorization": f"Bearer {WIDGET_KEY}"}
    url = "/storefront/api/redeem?customer=shopify:7208815100001"
    ambiguous = client.post(url, json={"reward": "five_off"}, headers=auth)
    assert ambiguous.status_code == 409 and "add &shop=" in ambiguous.json()["error"]
    assert shopify.codes() == []
    with transaction(store) as session:
        assert session.scalar(select(func.count()).select_from(Redemption)) == 0
    named = client.post(f"{url}&shop={SHOP}", json={"reward": "five_off"}, headers=auth)
    assert named.status_code == 201 and shopify.codes() == [named.json()["code"]]
