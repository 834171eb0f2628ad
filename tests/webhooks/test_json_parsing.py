"""Webhook JSON is parsed exactly as the standard library parses it, fast path or not."""

import json
from decimal import Decimal

import pytest
from deliveries import fixture_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from postpurchase.webhooks.intake import parse_json
from postpurchase.webhooks.rejections import Rejection


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _standard(body: bytes) -> object:
    """What the intake accepted before its fast path: json.loads, fractions as Decimal."""
    return json.loads(body, parse_float=Decimal, parse_constant=_refuse)


def _exactly(value: object) -> object:
    """``value`` with each number's type and each Decimal's digits made visible to ==."""
    if isinstance(value, dict):
        return [(key, _exactly(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_exactly(item) for item in value]
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    return (type(value).__name__, value)


def _same_as_standard(body: bytes) -> None:
    try:
        expected = _standard(body)
    except (ValueError, RecursionError):
        with pytest.raises(Rejection) as refused:
            parse_json(body)
        assert refused.value.status_code == 400
        return
    assert _exactly(parse_json(body)) == _exactly(expected)


JSON_BYTES = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"/", b" ", b"\t", b"\n", b"\r"]
JSON_BYTES += [bytes([c]) for c in b"0123456789.eE+-abcdefnrtuxNIaIy"]
JSON_BYTES += [b"\x00", b"\x1f", b"\x7f", b"\x80", b"\xed", b"\xa0", b"\xff", b"\xef\xbb\xbf"]
JSON_BYTES += [b"\\u0000", b"\\ud800", b"\\udc00", b"\\u00e9", b"NaN", b"Infinity", b"1e400"]

ORDER = fixture_bytes("shopify/orders_create.json")


@pytest.mark.parametrize(
    "body",
    [
        b'"\\ud800"',  # a lone surrogate escape: kept, the 422 check finds it later
        b'"\xed\xa0\x80"',  # the raw bytes of a surrogate
        '{"a": "é"}'.encode("utf-16"),
        b"\xef\xbb\xbf{}",
        b'{"a": NaN}',
        b'{"a": 1e400, "b": -0.0, "c": 123456789012345678901234567890}',
        b'{"a": 1, "a": 2}',
        b'"a\nb"',
        b"[" * 5000 + b"]" * 5000,
        b"",
        ORDER,
    ],
)
def test_known_edges_parse_as_the_standard_library_does(body):
    _same_as_standard(body)


@settings(max_examples=500, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    ),
    st.booleans(),
)
def test_any_json_document_parses_as_the_standard_library_does(value, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    _same_as_standard(body)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_damaged_documents_parse_or_fail_as_the_standard_library_does(data):
    body = bytearray(ORDER if data.draw(st.booleans()) else b'{"a": [1.5, "x", null]}')
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body)))
        body[at:at] = data.draw(st.sampled_from(JSON_BYTES))
        if data.draw(st.booleans()) and len(body) > 1:
            del body[data.draw(st.integers(0, len(body) - 1))]
    _same_as_standard(bytes(body))
