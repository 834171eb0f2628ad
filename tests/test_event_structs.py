"""Shopify orders checked without pydantic (``event_structs``) answer as pydantic's path does.

``shopify_entry`` is run twice on each delivery: as it is, and with ``checked_event`` taking
nothing, so that every order is validated by ``CanonicalEvent``. Both must give the same
inbox entry (the same stored bytes, times, notes, key) or the same refusal (status, reason,
problems). Deliveries are the Shopify order fixtures and variations of them: text with
spaces around it, NUL, escapes and characters beyond ASCII, over-long fields, odd addresses,
amounts with many places, signed or huge, times in odd offsets or none, fields left out or
null. The structs themselves are held to the models field for field.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from deliveries import FIXTURES, SHOP, SHOPIFY_SECRET, intake_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from postpurchase import event_structs
from postpurchase.event_structs import CheckedEvent
from postpurchase.events import CanonicalEvent
from postpurchase.inbox import InboxEntry
from postpurchase.platforms import shopify
from postpurchase.webhooks.intake import shopify_entry
from postpurchase.webhooks.rejections import Rejection
from postpurchase.webhooks.signatures import base64_digest

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SETTINGS = intake_settings("sqlite://", include_test_orders=True)  # test orders normalised too
ORDERS = [
    "shopify/orders_create.json",
    "genuine/shopify/admin_api_order_ipod_nano.json",
    "genuine/shopify/dev_store_aud_orders_create.json",
    "genuine/shopify/test_notification_orders_create.json",
]
TOPICS = ["orders/create", "orders/paid", "orders/updated", "orders/cancelled"]


def _outcome(topic: str, body: bytes) -> tuple[Any, ...]:
    headers = {
        "content-type": "application/json",
        "x-shopify-topic": topic,
        "x-shopify-hmac-sha256": base64_digest(body, SHOPIFY_SECRET),
        "x-shopify-shop-domain": SHOP,
        "x-shopify-event-id": str(uuid.UUID(int=len(body))),
        "x-shopify-triggered-at": "2026-11-20T14:14:05.123456Z",
    }
    try:
        entry = shopify_entry(SETTINGS, headers, body, NOW)
    except Rejection as exc:
        return ("refused", exc.status_code, exc.reason, exc.problems)
    return _described(entry)


def _described(entry: InboxEntry) -> tuple[Any, ...]:
    at = entry.occurred_at
    return (
        entry.source,
        entry.dedupe_key,
        entry.event_type,
        entry.topic,
        entry.shop,
        entry.subject_id,
        at,
        at.utcoffset() if at else None,
        entry.payload_json,
        entry.status,
        entry.notes,
    )


def _both_paths(topic: str, body: bytes) -> bool:
    """Whether the delivery was checked without pydantic; fails unless both paths agree."""
    taken: list[CheckedEvent] = []

    def watched(data: dict[str, Any]) -> CheckedEvent | None:
        event = event_structs.checked_event(data)
        if event is not None:
            taken.append(event)
            # What _not_ahead, InboxEntry.for_event and unstorable_field read of it, as
            # pydantic's event of the same data gives them: each time with its offset, the
            # subject, every text.
            model = CanonicalEvent.model_validate(data)
            assert event.times() == model.times()
            assert [v.utcoffset() for _, v in event.times()] == [
                v.utcoffset() for _, v in model.times()
            ]
            assert (event.type, event.subject_id()) == (model.type, model.subject_id())
            assert event.as_payload() == model.as_payload()
        return event

    fast = _outcome_with(topic, body, watched)
    full = _outcome_with(topic, body, lambda _: None)
    assert fast == full
    return bool(taken)


def _outcome_with(topic: str, body: bytes, check: Any) -> tuple[Any, ...]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shopify, "checked_event", check)
        return _outcome(topic, body)


@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("name", ORDERS)
def test_order_fixtures_are_answered_alike(name, topic):
    body = (FIXTURES / name).read_bytes()
    if shopify.decoded_order(topic, body) is None:
        pytest.skip("not decoded on the fast path (wrapped, or not of this topic)")
    _both_paths(topic, body)


# Text pydantic strips, keeps, or refuses; the spaces of every kind; NUL; escapes.
_SPACES = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
_TEXT = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12),
    st.text(alphabet=_SPACES + 'ab\x00"\\’€é', max_size=6),
    st.builds(lambda s, n: s * n, st.sampled_from(["a", " ", "é", "\u00a0"]), st.integers(0, 330)),
)
_EMAILS = st.sampled_from(
    [
        "ines.moreau@example.com",
        "Ines.Moreau@Example.com",
        " ines@example.com",
        "ines@example.com\n",
        "",
        "ines@",
        "ines@localhost",
        "in\u00e8s@example.com",
        "ines@ex\u00e4mple.de",
        "a" * 65 + "@example.com",
        "ines@" + "b" * 250 + ".com",
        "x@example.test",
        "\u00a0ines@example.com",
    ]
)
_AMOUNTS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "-0.00",
            "1E+20",
            "0E+20",
            "12.34567",
            "99999999999.99",
            "100000000000",
            "1.50000",
            "-5.00",
            " 12.50 ",
            "1_000",
            "12.5",
        ]
    ),
    st.integers(-(10**13), 10**13),
)
_TIMES = st.sampled_from(
    [
        "2026-11-20T09:14:05-05:00",
        "2026-11-20T09:14:05Z",
        "2026-11-20T09:14:05+14:00",
        "2026-11-20T09:14:05-23:59",
        "2026-11-20T09:14:05+05:45",
        "2026-11-20T09:14:05.123456+01:00",
        "2026-11-20T09:14:05",
        "2026-11-20 09:14:05+00:00",
        "1970-01-01T00:00:00+01:00",
        "9000-12-31T23:59:59-01:00",
        "2026-11-20T15:09:59Z",
        "2026-11-20T15:10:01Z",
        "2027-01-01T00:00:00+00:00",
    ]
)
_EDITS = st.sampled_from(
    [
        lambda v: f" {v}",
        lambda v: f"{v}\u00a0",
        lambda v: f"{v}\u3000",
        lambda v: f"{v}\x1f",
        lambda v: v * 70,
        lambda v: v.upper(),
        lambda v: f"{v}\x00",
        lambda v: f'{v} "x"',
        lambda v: f"{v}’s",
        lambda v: f"Inès {v}",
        lambda v: v[:1],
        lambda v: "",
    ]
)
_VALUES = st.one_of(_TEXT, _EMAILS, _AMOUNTS, _TIMES, st.none(), st.integers(), st.booleans())


def _fields(order: dict[str, Any]) -> list[tuple[Any, str]]:
    """(container, key) of every field the normaliser reads, in the order and its parts."""
    found: list[tuple[Any, str]] = [(order, key) for key in order]
    for part in ("customer", "shipping_address", "billing_address", "total_price_set"):
        if isinstance(order.get(part), dict):
            found += [(order[part], key) for key in order[part]]
    for part in ("line_items", "discount_codes", "note_attributes", "shipping_lines"):
        for item in order.get(part) or []:
            if isinstance(item, dict):
                found += [(item, key) for key in item]
    customer = order.get("customer")
    if isinstance(customer, dict):
        for part in ("email_marketing_consent", "default_address"):
            if isinstance(customer.get(part), dict):
                found += [(customer[part], key) for key in customer[part]]
    return found


_PREFERRED = [
    "email",
    "name",
    "currency",
    "total_price",
    "subtotal_price",
    "total_tax",
    "created_at",
    "updated_at",
    "first_name",
    "last_name",
    "phone",
    "tags",
    "title",
    "sku",
    "vendor",
    "price",
    "quantity",
    "id",
    "customer_locale",
    "financial_status",
    "code",
    "value",
    "amount",
    "consent_updated_at",
    "state",
    "country_code",
    "province_code",
    "currency_code",
]


@st.composite
def _variations(draw: st.DrawFn) -> tuple[str, bytes]:
    order = json.loads((FIXTURES / draw(st.sampled_from(ORDERS))).read_text())
    for _ in range(draw(st.integers(1, 4))):
        fields = _fields(order)
        if not fields:
            break
        wanted = [f for f in fields if f[1] in _PREFERRED]
        container, key = draw(st.sampled_from(wanted or fields))
        if draw(st.integers(0, 9)) == 0:
            del container[key]
            continue
        if key in ("email", "contact_email"):
            container[key] = draw(st.one_of(_EMAILS, _VALUES))
        elif "price" in key or key in ("total_tax", "amount"):
            container[key] = draw(st.one_of(_AMOUNTS, _VALUES))
        elif key.endswith("_at"):
            container[key] = draw(st.one_of(_TIMES, _VALUES))
        elif isinstance(container[key], str) and draw(st.booleans()):
            container[key] = draw(_EDITS)(container[key])  # the sent text, a little off
        else:
            container[key] = draw(_VALUES)
    body = json.dumps(order, ensure_ascii=draw(st.booleans())).encode()
    return draw(st.sampled_from(TOPICS)), body


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_variations())
def test_order_variations_are_answered_alike(delivery):
    topic, body = delivery
    _both_paths(topic, body)


def test_plain_variations_are_taken():
    # Not a differential check (the test above is): that the check takes what it should,
    # so that the test above compares two paths, not one.
    order = json.loads((FIXTURES / ORDERS[0]).read_text())
    order["customer"]["first_name"] = "Inès"
    order["line_items"][0]["title"] = "Trail Runner GTX 2"
    assert _both_paths("orders/create", json.dumps(order, ensure_ascii=False).encode())
    order["line_items"][0]["title"] = "Trail Runner GTX "
    assert not _both_paths("orders/create", json.dumps(order).encode())


def test_the_structs_hold_the_fields_of_the_models_in_their_order():
    for model, struct in event_structs._STRUCTS.items():
        assert struct.__struct_fields__ == tuple(model.model_fields), model.__name__
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        assert {f.name for f in msgspec.structs.fields(struct) if f.required} == required
    module = sys.modules[CanonicalEvent.__module__]
    models = {
        m
        for m in vars(module).values()
        if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == module.__name__
    }
    assert set(event_structs._STRUCTS) == models - {
        _Model for _Model in models if not _Model.model_fields
    }


class _Texts(BaseModel):
    model_config = CanonicalEvent.model_config  # str_strip_whitespace, as the models strip
    texts: list[str]


def test_the_first_bytes_of_spaces_beyond_ascii_are_those_written_out():
    spaces = [chr(c) for c in range(0x80, sys.maxunicode + 1) if chr(c).isspace()]
    assert set(event_structs._WIDE_SPACE_LEADS) == {c.encode()[0] for c in spaces}


def test_every_character_pydantic_strips_is_one_the_check_doubts():
    characters = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    kept = _Texts.model_validate({"texts": [f"{c}x{c}" for c in characters]}).texts
    stripped = [c for c, text in zip(characters, kept, strict=True) if text != f"{c}x{c}"]
    assert stripped  # the check below is not vacuous
    for character in stripped:
        assert character.isspace(), repr(character)
        for text in (f"{character}x", f"x{character}"):
            assert not event_structs.stripped(event_structs._ENCODER.encode([text]))
