"""``e164``: local numbers read as the regions given, each region tried once."""

from __future__ import annotations

import pytest

from postpurchase.platforms.fields import e164


@pytest.mark.parametrize(
    ("raw", "regions", "expected"),
    [
        # valid in a later region than the first: found whatever the repeats before it
        ("020 7946 0018", ("US", "us", None, "GB"), "+442079460018"),
        ("020 7946 0018", ("US", "US", "US"), None),
        # valid nowhere (a documentation 555 number): the first region's plausible form,
        # also when that region is named again in another case
        ("(555) 555-5555", ("US", "US", "US"), "+15555555555"),
        ("(555) 555-5555", ("us", "US", "CA"), "+15555555555"),
        ("(555) 555-5555", (None, "US", "US"), None),
        ("0412 345 678", ("", "AU", "au"), "+61412345678"),
    ],
)
def test_repeated_regions_give_the_verdict_of_their_first_mention(
    raw: str, regions: tuple[str | None, ...], expected: str | None
):
    assert e164(raw, *regions) == expected
