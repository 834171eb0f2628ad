"""Time zones guessed from addresses, for platforms that send none."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from babel.core import get_global

from postpurchase.platforms.zones import REGION_ZONES, zone_from_address


@pytest.mark.parametrize(
    ("country", "region", "zone"),
    [
        ("US", "NY", "America/New_York"),
        ("us", " ca ", "America/Los_Angeles"),  # as typed into a WooCommerce form
        ("US", "AZ", "America/Phoenix"),  # no daylight saving time
        ("US", "HI", "Pacific/Honolulu"),
        ("CA", "BC", "America/Vancouver"),
        ("CA", "NL", "America/St_Johns"),
        ("AU", "WA", "Australia/Perth"),
        ("DE", None, "Europe/Berlin"),
        ("FR", "75", "Europe/Paris"),  # the region does not matter in one-clock countries
        ("ES", None, "Europe/Madrid"),
        ("NZ", None, "Pacific/Auckland"),
    ],
)
def test_zone_by_country_and_state(country, region, zone):
    assert zone_from_address(country, region) == zone


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("US", None),  # which of six clocks?
        ("US", "AP"),  # armed forces Pacific
        ("BR", "SP"),
        ("RU", None),
        ("MX", "JAL"),
        ("XX", None),
        (None, "NY"),
        ("", None),
    ],
)
def test_no_guess_where_the_address_cannot_tell(country, region):
    assert zone_from_address(country, region) is None


def test_every_guess_is_a_zone_this_machine_knows():
    countries = get_global("territory_zones")
    guesses = {zone_from_address(c) for c in countries}
    guesses |= {zone_from_address(c, r) for c, regions in REGION_ZONES.items() for r in regions}
    for zone in guesses - {None}:
        ZoneInfo(zone)
