"""A customer's likely time zone from their address, for platforms that send none.

Shopify and WooCommerce give no customer time zone, and without one every customer would get
the shop's: SMS quiet hours and send windows would then hold for the shop's clock, not the
customer's (9:00 in New York is 6:00 in Los Angeles). The address is the best evidence there
is. A country whose zones all keep the same clock gets that zone, as does one where all but a
few islands do (Spain, Portugal, New Zealand, ...); the United States, Canada and Australia go
by state or province, each to the zone most of its people live in; any other country spanning
several clocks (Brazil, Mexico, Russia, ...) gives no guess, and the shop's zone is used.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import get_global

_NEW_YORK, _CHICAGO, _DENVER, _LOS_ANGELES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
)
REGION_ZONES: dict[str, dict[str, str]] = {
    "US": {
        **dict.fromkeys(
            "CT DE DC FL GA KY ME MD MA NH NJ NY NC OH PA RI SC VT VA WV".split(), _NEW_YORK
        ),
        **dict.fromkeys("AL AR IL IA KS LA MN MS MO NE ND OK SD TN TX WI".split(), _CHICAGO),
        **dict.fromkeys("CO MT NM UT WY".split(), _DENVER),
        **dict.fromkeys("CA NV OR WA".split(), _LOS_ANGELES),
        "AK": "America/Anchorage",
        "AZ": "America/Phoenix",
        "HI": "Pacific/Honolulu",
        "ID": "America/Boise",
        "IN": "America/Indiana/Indianapolis",
        "MI": "America/Detroit",
        "PR": "America/Puerto_Rico",
        "VI": "America/St_Thomas",
        "GU": "Pacific/Guam",
        "MP": "Pacific/Saipan",
        "AS": "Pacific/Pago_Pago",
    },
    "CA": {
        "AB": "America/Edmonton",
        "BC": "America/Vancouver",
        "MB": "America/Winnipeg",
        "NB": "America/Moncton",
        "NL": "America/St_Johns",
        "NS": "America/Halifax",
        "NT": "America/Edmonton",
        "NU": "America/Iqaluit",
        "ON": "America/Toronto",
        "PE": "America/Halifax",
        "QC": "America/Toronto",
        "SK": "America/Regina",
        "YT": "America/Whitehorse",
    },
    "AU": {
        "ACT": "Australia/Sydney",
        "NSW": "Australia/Sydney",
        "NT": "Australia/Darwin",
        "QLD": "Australia/Brisbane",
        "SA": "Australia/Adelaide",
        "TAS": "Australia/Hobart",
        "VIC": "Australia/Melbourne",
        "WA": "Australia/Perth",
    },
}
# Countries of several clocks where nearly everyone keeps the mainland's.
_MAINLAND = {
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "NZ": "Pacific/Auckland",
    "PT": "Europe/Lisbon",
    "UA": "Europe/Kyiv",
}
# A winter and a summer day of either hemisphere: zones that agree on both keep one clock.
_PROBES = (datetime(2026, 1, 15, 12), datetime(2026, 7, 15, 12))


def zone_from_address(country: str | None, region: str | None = None) -> str | None:
    """The IANA zone for an ISO country code and (for US, CA, AU) state or province code."""
    if not country:
        return None
    country = country.strip().upper()
    by_region = REGION_ZONES.get(country)
    if by_region is not None:
        return by_region.get((region or "").strip().upper())
    return _MAINLAND.get(country) or _single_clock_zone(country)


def first_zone(*addresses: tuple[str | None, str | None]) -> str | None:
    """The zone of the first (country, region) address that gives one, most telling first."""
    return next((z for c, r in addresses if (z := zone_from_address(c, r))), None)


@cache
def _single_clock_zone(country: str) -> str | None:
    zones = get_global("territory_zones").get(country, [])
    try:
        clocks = {
            tuple(probe.replace(tzinfo=ZoneInfo(z)).utcoffset() for probe in _PROBES) for z in zones
        }
    except ZoneInfoNotFoundError:
        return None
    return zones[0] if len(clocks) == 1 else None
