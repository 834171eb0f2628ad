"""``normalised_email`` accepts, normalises and refuses exactly as email-validator does.

Plain ASCII addresses are decided without a full email-validator check (the part after the
@-sign is checked once per domain) and cached lower-cased; whatever the shortcut, and whatever
case of the address was seen first, the verdict, the normal form and the message of a refusal
must be those of ``validate_email`` on the whole address. Held to it over every address in
tests/fixtures (the genuine payloads included), edge cases around each rule, and generated
addresses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from postpurchase.events import normalised_email
from postpurchase.platforms.fields import usable_email

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _library(raw: str) -> tuple[str, str]:
    try:
        return "ok", validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        return "refused", str(exc)


def _ours(raw: str) -> tuple[str, str]:
    try:
        return "ok", normalised_email(raw)
    except EmailNotValidError as exc:
        return "refused", str(exc)


def _emails(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and "email" in key:
                yield item
            yield from _emails(item)
    elif isinstance(value, list):
        for item in value:
            yield from _emails(item)


def _fixture_emails() -> list[str]:
    documents = [json.loads(path.read_text(encoding="utf-8")) for path in FIXTURES.rglob("*.json")]
    return sorted({email for document in documents for email in _emails(document)})


def test_the_fixtures_name_addresses_to_check():
    assert len(_fixture_emails()) >= 5


@pytest.mark.parametrize("raw", _fixture_emails())
def test_every_fixture_address_is_read_as_email_validator_reads_it(raw):
    assert _ours(raw) == _library(raw)
    assert _ours(raw.strip()) == _library(raw.strip())


LONG_LABEL = "d" * 63
EDGES = [
    "C0@Example.com",
    "Jon.Smith+tag@Mail.Example.CO.uk",
    "postmaster@Example.com",  # a case-insensitive mailbox name
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@b",
    "a@test",
    "a@shop.test",
    "a@printer.local",
    "a@localhost",
    "a@x.invalid",
    "a@site.onion",
    "a@1.2.3.4",
    "a@example.123",
    "a@-example.com",
    "a@example-.com",
    "a@ex--ample.com",
    "a@ab--c.com",
    "a@xn--bcher-kva.example",
    "a@xn--zz.example",
    "a@" + "e" * 64 + ".com",
    "a@" + ".".join([LONG_LABEL] * 3) + ".com",
    "a@example..com",
    "a@.example.com",
    "a@example.com.",
    "a@[127.0.0.1]",
    '"a b"@example.com',
    '"ab"@example.com',
    "Name <a@example.com>",
    "a@b@example.com",
    "a b@example.com",
    "é@example.com",
    "a@bücher.example",
    "a\x00@example.com",
    "a@example.com\r\n",
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",
]


def _at_length(total: int) -> str:
    """A plain address of ``total`` characters (the limit is 254)."""
    domain = ".".join([LONG_LABEL] * 3) + ".com"  # 195 characters
    return "x" * (total - len(domain) - 1) + "@" + domain


@pytest.mark.parametrize("raw", [*EDGES, _at_length(253), _at_length(254), _at_length(255)])
def test_edges_of_each_rule_are_read_as_email_validator_reads_them(raw):
    assert _ours(raw) == _library(raw)


def _cases(raw: str) -> list[str]:
    return [raw.lower(), raw, raw.upper(), raw.swapcase(), raw.title()]


@pytest.mark.parametrize("raw", [*EDGES, "\u212a@example.com", "a@\u212aample.com"])
@pytest.mark.parametrize("first", [str.lower, str.upper, str.title])
def test_an_address_seen_in_another_case_first_is_still_read_as_email_validator_reads_it(
    raw, first
):
    _ours(first(raw))  # cached in that case, when the shortcut took it
    for variant in _cases(raw):
        assert _ours(variant) == _library(variant), variant


def test_a_plain_address_is_kept_lower_cased_and_an_unusable_one_says_why():
    assert usable_email(" C0@Example.com ") == ("c0@example.com", None)
    assert usable_email("a@shop.test") == (None, _library("a@shop.test")[1])
    assert usable_email(_at_length(254))[0] == _at_length(254)
    assert usable_email(_at_length(255))[0] is None


_LOCAL = st.text(alphabet="aZ09._+-!#'`~\"<> @é\x00", min_size=0, max_size=70)
_LABEL = st.one_of(
    st.text(alphabet="aZ09-_é", min_size=0, max_size=66),
    st.sampled_from(["xn--bcher-kva", "xn--zz", "test", "local", "localhost", "123", "com"]),
)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=5).map(".".join)


@settings(max_examples=2000)
@given(local=_LOCAL, domain=_DOMAIN, padding=st.integers(0, 200))
def test_generated_addresses_are_read_as_email_validator_reads_them(local, domain, padding):
    raw = f"{local}@{domain}"
    for variant in _cases(raw):  # the lower-cased first: the others are then cached answers
        assert _ours(variant) == _library(variant), variant
    long = f"{local}{'x' * padding}@{domain}"  # reaching the length limit
    assert _ours(long) == _library(long)
