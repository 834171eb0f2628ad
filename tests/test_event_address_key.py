"""``address_key``: the digest referral checks compare, unchanged whatever text it is given.

ASCII parts are cleaned with ``bytes.translate`` rather than the pattern; held here to the
pattern's result on any text, and to digests stored before (rows already hold them).
"""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postpurchase.events import address_key

_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]+")


def _by_pattern(*parts: str | None) -> str | None:
    """The key as the pattern alone makes it."""
    cleaned = [_NOT_ALPHANUMERIC.sub("", (part or "").casefold()) for part in parts]
    if len(cleaned) < 2 or not cleaned[0] or not cleaned[1]:
        return None
    return hashlib.sha256("|".join(cleaned).encode()).hexdigest()[:32]


@pytest.mark.parametrize(
    ("parts", "stored"),
    [
        (("12 Harbour Street", "04101", "US"), "e1784f9c88986b314cd3157dede01d95"),
        (("Straße 1", "K-12", "DE"), "65ce042d523d7eabaa6a2f80490ce1bd"),
        (("1", None, "x"), None),
    ],
)
def test_keys_are_those_stored_before(parts, stored):
    assert address_key(*parts) == stored


_TEXT = st.one_of(
    st.none(),
    st.text(),  # any character, the Kelvin sign and "ß" (folded to ASCII letters) included
    st.text(alphabet="aZ09 -_.,#/\tÉéß\u212aİ\x00", max_size=30),
)


@given(st.lists(_TEXT, min_size=0, max_size=4))
def test_any_text_gives_the_key_the_pattern_gives(parts):
    assert address_key(*parts) == _by_pattern(*parts)
