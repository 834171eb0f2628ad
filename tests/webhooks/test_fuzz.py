"""Property-based fuzzing of every route: whatever a client sends, the answer is never a 5xx,
and a refused request stores nothing.

Bodies are random bytes, random JSON, or realistic payloads with one field replaced or removed;
most are signed correctly, so the fuzzing reaches parsing and validation, not only the
signature check.
"""

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from deliveries import (
    GENERIC_SECRET,
    SHOP,
    SHOPIFY_SECRET,
    WOO_SECRET,
    fixture_json,
    intake_settings,
)
from fakes.fake_sendgrid import EventSigner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from postpurchase.messages.tokens import LinkClaim, sign
from postpurchase.reviews.models import ProductReview
from postpurchase.store.models import (
    InboxEvent,
    MessageEvent,
    Redemption,
    Suppression,
    SurveyResponse,
)
from postpurchase.webhooks.app import create_app
from postpurchase.webhooks.signatures import base64_digest, sign_generic

SHOPIFY_BASES = {
    "orders/create": "shopify/orders_create.json",
    "orders/updated": "shopify/orders_create.json",
    "refunds/create": "shopify/refunds_create.json",
    "fulfillment_events/create": "shopify/fulfillment_events_create.json",
    "returns/request": "shopify/returns_request.json",
    "customers/update": "shopify/customers_update.json",
}
GENERIC_BASE = {
    "id": "evt_base",
    "type": "order.refunded",
    "occurred_at": "2026-11-27T10:00:00Z",
    "order": {
        "external_id": "A-1",
        "currency": "EUR",
        "total": "10.00",
        "lines": [{"external_id": "1", "title": "Tea", "quantity": 1, "unit_price": "10.00"}],
        "customer": {"external_id": "c-1", "email": "a@example.org"},
    },
    "refund": {"external_id": "r-1", "amount": "10.00", "currency": "EUR"},
}
PRIVACY_BASE = {
    "id": "dsr-base",
    "kind": "erase",
    "shop": "tea-house.example",
    "customer": {"external_id": "c-1", "email": "a@example.org", "phone": "+15556251199"},
    "orders": ["A-1"],
    "requested_at": "2026-11-27T10:00:00Z",
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1e400",
            "NaN",
            "2026-13-45T99:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "\u0000",
            "\ud800",
            "x" * 300,
            "USD",
            "delivered",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw, base: Any) -> Any:
    """``base`` with one field replaced by a random value, or removed."""
    document = json.loads(json.dumps(base))
    path = draw(st.sampled_from(_paths(document)))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return document


def _raw(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode("utf-8", "surrogatepass")


bodies_for_shopify = st.sampled_from(sorted(SHOPIFY_BASES)).flatmap(
    lambda topic: st.tuples(
        st.just(topic),
        st.one_of(
            mutated(fixture_json(SHOPIFY_BASES[topic])),
            json_values,
            st.binary(max_size=200),
        ),
    )
)
header_noise = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "X-Shopify-Topic",
            "X-Shopify-Shop-Domain",
            "X-Shopify-Event-Id",
            "X-WC-Webhook-Topic",
            "X-WC-Webhook-ID",
            "Content-Length",
            "X-Shopify-Triggered-At",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300),
    max_size=2,
)
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _inbox_count(store) -> int:
    with store() as session:
        return session.execute(select(func.count()).select_from(InboxEvent)).scalar_one()


def _check(response, store, before: int) -> None:
    event(f"answered {response.status_code}")  # --hypothesis-show-statistics shows the mix
    assert response.status_code < 500, response.text
    after = _inbox_count(store)
    if response.status_code == 202:
        assert after == before + 1
    else:
        assert after == before, f"{response.status_code} {response.text} stored a row"


@SETTINGS
@given(case=bodies_for_shopify, sign=st.booleans() | st.just(True), noise=header_noise)
def test_shopify_route_survives_anything(client, store, case, sign, noise):
    topic, body = case
    raw = _raw(body)
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Hmac-Sha256": base64_digest(raw, SHOPIFY_SECRET if sign else "guess"),
        **noise,
    }
    before = _inbox_count(store)
    _check(client.post("/webhooks/shopify", content=raw, headers=headers), store, before)


@SETTINGS
@given(
    body=st.one_of(
        mutated(fixture_json("woocommerce/order_processing.json")),
        json_values,
        st.binary(max_size=200),
    ),
    topic=st.sampled_from(["order.created", "order.updated", "order.deleted", ""]),
    sign=st.booleans() | st.just(True),
    noise=header_noise,
)
def test_woocommerce_route_survives_anything(client, store, body, topic, sign, noise):
    raw = _raw(body)
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-ID": "14",
        "X-WC-Webhook-Signature": base64_digest(raw, WOO_SECRET if sign else "guess"),
        **noise,
    }
    before = _inbox_count(store)
    _check(client.post("/webhooks/woocommerce", content=raw, headers=headers), store, before)


@SETTINGS
@given(
    body=st.one_of(mutated(GENERIC_BASE), json_values, st.binary(max_size=200)),
    skew=st.sampled_from([0, 0, 0, -10_000, 10_000]),
    sign=st.booleans() | st.just(True),
    noise=header_noise,
)
def test_generic_route_survives_anything(client, store, body, skew, sign, noise):
    raw = _raw(body)
    if isinstance(body, dict):  # unique ids, so a valid event is accepted, not a duplicate
        body.setdefault("id", "x")
        raw = _raw({**body, "id": f"{body['id']}-{uuid.uuid4()}"}) if body["id"] else raw
    headers = {
        "Content-Type": "application/json",
        "X-Postpurchase-Signature": sign_generic(
            raw, GENERIC_SECRET if sign else "guess", int(time.time()) + skew
        ),
        **noise,
    }
    before = _inbox_count(store)
    _check(client.post("/webhooks/events", content=raw, headers=headers), store, before)


@SETTINGS
@given(
    body=st.one_of(mutated(PRIVACY_BASE), json_values, st.binary(max_size=200)),
    sign=st.booleans() | st.just(True),
    noise=header_noise,
)
def test_privacy_route_survives_anything(client, store, body, sign, noise):
    raw = _raw(body)
    if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
        raw = _raw({**body, "id": f"{body['id'][:20]}-{uuid.uuid4()}"})  # never a duplicate
    headers = {
        "Content-Type": "application/json",
        "X-Postpurchase-Signature": sign_generic(
            raw, GENERIC_SECRET if sign else "guess", int(time.time())
        ),
        **noise,
    }
    before = _inbox_count(store)
    _check(client.post("/privacy/requests", content=raw, headers=headers), store, before)


# --- Every route, from the app's own OpenAPI schema (schemathesis) ---------------------------
# Requests are generated from what /openapi.json says each route takes. Provider requests are
# also sent signed (SendGrid's key, Twilio's token), so fuzzing reaches parsing and storing,
# not only the signature check. Bounded: a few examples per route, on SQLite and PostgreSQL.

FUZZ_EXAMPLES = 12
TWILIO_TOKEN = "fuzz-twilio-auth-token"
SIGNING_SECRET = "fuzz-signing-secret"
PUBLIC_BASE = "https://hooks.shop.example.com"
_STORED = (InboxEvent, MessageEvent, Suppression, SurveyResponse, Redemption, ProductReview)


OPERATIONS = [
    ("POST", "/webhooks/shopify"),
    ("POST", "/webhooks/woocommerce"),
    ("POST", "/webhooks/events"),
    ("POST", "/privacy/requests"),
    ("POST", "/webhooks/sendgrid/events"),
    ("POST", "/webhooks/twilio/status"),
    ("POST", "/webhooks/twilio/inbound"),
    ("GET", "/u/{token}"),
    ("POST", "/u/{token}"),
    ("GET", "/s/{token}"),
    ("POST", "/s/{token}"),
    ("GET", "/c/{token}"),
    ("HEAD", "/c/{token}"),
    ("GET", "/rewards/{token}"),
    ("POST", "/rewards/{token}"),
    ("GET", "/storefront/proxy/account"),
    ("POST", "/storefront/proxy/redeem"),
    ("GET", "/storefront/api/account"),
    ("POST", "/storefront/api/redeem"),
    ("OPTIONS", "/storefront/api/{action}"),
    ("GET", "/r/{token}"),
    ("POST", "/r/{token}"),
    ("GET", "/reviews.json"),
    ("GET", "/reviews/google-product-reviews.xml"),
    ("GET", "/n/{token}"),
    ("POST", "/n/{token}"),
    ("POST", "/webhooks/judgeme"),
    ("POST", "/webhooks/yotpo/{token}"),
    ("GET", "/webhooks/health"),
]


@pytest.fixture(scope="module")
def signer():
    return EventSigner()


@pytest.fixture
def api_app(db_url, store, signer):
    settings = intake_settings(
        db_url,
        api_docs=True,
        public_base_url=PUBLIC_BASE,
        signing_secret=SIGNING_SECRET,
        sendgrid_event_public_key=signer.public_key,
        twilio_auth_token=TWILIO_TOKEN,
        judgeme_webhook_secret="fuzz-judgeme-secret",
        yotpo_webhook_token="fuzz-yotpo-token",
        yotpo_app_key="fuzz-yotpo-app-key",
    )
    return create_app(settings, session_factory=store)


def test_the_schema_lists_every_route(api_app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    listed = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert listed == set(OPERATIONS)


def _stored(store) -> tuple[int, ...]:
    with store() as session:
        return tuple(
            session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in _STORED
        )


def _signed_variant(case, signer) -> tuple[bytes, dict[str, str], str | None] | None:
    """The case's body signed as its provider would sign it (or with a genuine link token
    for the link routes): body, headers, token; None for other routes."""
    path = case.operation.path
    if path == "/webhooks/sendgrid/events" and isinstance(case.body, list):
        raw = json.dumps(case.body).encode()
        return raw, signer.headers_for(raw), None
    if path in ("/u/{token}", "/s/{token}"):  # a genuine link, with the case's form
        purpose = "unsubscribe" if path.startswith("/u/") else "survey"
        token = sign(
            SIGNING_SECRET.encode(), LinkClaim(purpose, 1, 1, 4 if purpose == "survey" else None)
        )
        form = case.body if isinstance(case.body, dict) else {}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return urlencode({str(k): str(v) for k, v in form.items()}).encode(), headers, token
    if path.startswith("/webhooks/twilio/") and isinstance(case.body, dict):
        form = {str(k): str(v) for k, v in case.body.items()}
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE + path, form)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        return urlencode(form).encode(), headers, None
    return None


def _answered(response, store, before, what: str) -> None:
    event(f"{what} answered {response.status_code}")
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        assert _stored(store) == before, f"a refused {what} stored something"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_route_in_the_schema_refuses_cleanly(api_app, store, signer, method, path):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def fuzz(case) -> None:
        before = _stored(store)
        _answered(case.call(), store, before, f"{method} {path}")
        signed = _signed_variant(case, signer)
        if signed is not None:
            raw, headers, token = signed
            url = path.replace("{token}", token or "")
            before = _stored(store)
            with TestClient(api_app) as client:
                answer = client.request(method, url, content=raw, headers=headers)
            _answered(answer, store, before, f"signed {method} {path}")

    fuzz()
