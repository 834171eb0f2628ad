from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from postpurchase.dispatch.gates import expiry_gate, next_allowed_time

QUIET = {"quiet_start": time(21, 0), "quiet_end": time(9, 0)}


@pytest.mark.parametrize(
    ("utc", "zone", "expected"),
    [
        # 15:00 in Paris: allowed.
        (datetime(2026, 11, 27, 14, 0, tzinfo=UTC), "Europe/Paris", None),
        # 21:00 sharp in Paris: quiet until 09:00 the next morning.
        (
            datetime(2026, 11, 27, 20, 0, tzinfo=UTC),
            "Europe/Paris",
            datetime(2026, 11, 28, 8, 0, tzinfo=UTC),
        ),
        # 02:00 in Paris: quiet until 09:00 the same day.
        (
            datetime(2026, 11, 28, 1, 0, tzinfo=UTC),
            "Europe/Paris",
            datetime(2026, 11, 28, 8, 0, tzinfo=UTC),
        ),
        # 08:59 in New York: one more minute.
        (
            datetime(2026, 11, 27, 13, 59, tzinfo=UTC),
            "America/New_York",
            datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
        ),
        # Across the DST change in Europe (29 March 2026): 09:00 CEST is 07:00 UTC.
        (
            datetime(2026, 3, 28, 22, 0, tzinfo=UTC),
            "Europe/Berlin",
            datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        ),
        # Kathmandu is UTC+5:45.
        (
            datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
            "Asia/Kathmandu",
            datetime(2026, 11, 28, 3, 15, tzinfo=UTC),
        ),
    ],
)
def test_quiet_hours_in_the_customers_zone(utc, zone, expected):
    assert next_allowed_time(utc, ZoneInfo(zone), **QUIET) == expected


def test_quiet_hours_within_one_day():
    lunch = {"quiet_start": time(12, 0), "quiet_end": time(14, 0)}
    zone = ZoneInfo("UTC")
    assert next_allowed_time(datetime(2026, 1, 1, 13, tzinfo=UTC), zone, **lunch) == datetime(
        2026, 1, 1, 14, tzinfo=UTC
    )
    assert next_allowed_time(datetime(2026, 1, 1, 14, tzinfo=UTC), zone, **lunch) is None


def test_a_message_later_than_its_campaign_allows_is_skipped():
    due = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    three_days = timedelta(days=3)

    assert expiry_gate(due, due + three_days, three_days) is None  # exactly at the limit: sent
    assert expiry_gate(due, due + three_days + timedelta(minutes=1), three_days) == (
        "too late: not sent within 3d of falling due"
    )
    assert expiry_gate(due, due + timedelta(days=400), None) is None  # no limit set
    assert expiry_gate(due, due + timedelta(hours=3), timedelta(hours=2, minutes=30)) == (
        "too late: not sent within 2h30m of falling due"
    )
