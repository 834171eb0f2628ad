"""Delays and send windows in the customer's zone, across daylight-saving changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from postpurchase.campaigns.timing import (
    Delay,
    SendWindow,
    due_times,
    parse_delay,
    parse_window,
    zone_or,
)

NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3d", Delay(days=3)),
        ("2h30m", Delay(seconds=9000)),
        ("1w2d", Delay(days=9)),
        ("5m", Delay(seconds=300)),
        ("0s", Delay()),
        ("P3D", Delay(days=3)),
        ("PT2H30M", Delay(seconds=9000)),
        ("P1DT12H", Delay(days=1, seconds=43200)),
        ("p2w", Delay(days=14)),
    ],
)
def test_delays_in_human_and_iso_form(text, expected):
    assert parse_delay(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3 days", "is not a duration"),
        ("", "is not a duration"),
        ("PT", "is not a duration"),
        ("P1M", "months and years are not supported"),
        ("d3", "is not a duration"),
    ],
)
def test_bad_delays_say_what_is_accepted(text, message):
    with pytest.raises(ValueError, match=message):
        parse_delay(text)


def test_days_keep_the_local_wall_clock_across_spring_forward():
    # Saturday 7 March 2026 12:00 EST; clocks go forward at 02:00 on Sunday 8 March.
    delivered = utc("2026-03-07T12:00:00-05:00")
    assert Delay(days=1).after(delivered, NEW_YORK) == utc("2026-03-08T12:00:00-04:00")
    # Elapsed hours do not: 24 hours later is 13:00 EDT.
    assert Delay(seconds=86400).after(delivered, NEW_YORK) == utc("2026-03-08T13:00:00-04:00")


def test_days_keep_the_local_wall_clock_across_fall_back():
    # Clocks go back at 02:00 on Sunday 1 November 2026.
    paid = utc("2026-10-31T18:30:00-04:00")
    assert Delay(days=1).after(paid, NEW_YORK) == utc("2026-11-01T18:30:00-05:00")


def test_a_day_landing_in_the_skipped_hour_is_just_after_it():
    # 02:30 on 8 March does not exist in New York: the moment is 03:30 EDT.
    moment = utc("2026-03-07T02:30:00-05:00")
    assert Delay(days=1).after(moment, NEW_YORK) == utc("2026-03-08T03:30:00-04:00")


def _wall_clock_after(delay: Delay, moment: datetime, zone: ZoneInfo) -> datetime:
    """What a delay means: the local wall clock moved by its days, read in the zone (the
    first occurrence of a repeated hour), then its seconds of elapsed time."""
    if delay.days:
        wall = moment.astimezone(zone).replace(tzinfo=None, fold=0) + timedelta(days=delay.days)
        moment = wall.replace(tzinfo=zone)
    return moment.astimezone(UTC) + timedelta(seconds=delay.seconds)


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago"]
)
def test_delays_are_wall_clock_days_at_every_half_hour_around_the_changes(zone):
    # Lord Howe moves by half an hour; Santiago changes at midnight; both in other months.
    local = ZoneInfo(zone)
    delays = [Delay(days=1), Delay(days=3, seconds=5400), Delay(seconds=86400)]
    for start, end in (("2026-03-01", "2026-04-12"), ("2026-09-01", "2026-11-08")):
        moment, stop = utc(start + "T00:00:00+00:00"), utc(end + "T00:00:00+00:00")
        while moment < stop:
            for delay in delays:
                due = delay.after(moment, local)
                assert due == _wall_clock_after(delay, moment, local), (moment, delay)
                assert due.tzinfo is UTC and due.fold == 0
            moment += timedelta(minutes=30)


def test_window_opens_at_local_ten_on_the_switch_day():
    window = parse_window("10:00-19:00")
    # 01:00 EST on 8 March: today's opening is 10:00 EDT (14:00 UTC, not 15:00).
    assert window.next_open(utc("2026-03-08T01:00:00-05:00"), NEW_YORK) == utc(
        "2026-03-08T10:00:00-04:00"
    )
    # 01:30 on 1 November (first, EDT, occurrence): the opening is 10:00 EST.
    assert window.next_open(utc("2026-11-01T01:30:00-04:00"), NEW_YORK) == utc(
        "2026-11-01T10:00:00-05:00"
    )


def test_window_keeps_times_inside_and_moves_late_ones_to_the_next_morning():
    window = parse_window("10:00-19:00")
    inside = utc("2026-06-10T18:59:00-04:00")
    assert window.next_open(inside, NEW_YORK) == inside
    assert window.next_open(utc("2026-06-10T19:00:00-04:00"), NEW_YORK) == utc(
        "2026-06-11T10:00:00-04:00"
    )


def test_the_same_moment_opens_at_different_utc_times_in_different_zones():
    window = parse_window("10:00-19:00")
    moment = utc("2026-06-10T06:00:00+00:00")
    assert window.next_open(moment, ZoneInfo("Asia/Tokyo")) == moment  # 15:00 in Tokyo
    assert window.next_open(moment, ZoneInfo("America/Los_Angeles")) == utc(
        "2026-06-10T10:00:00-07:00"
    )


def test_a_window_may_wrap_past_midnight():
    night = parse_window("20:00-08:00")
    assert night == SendWindow(time(20), time(8))
    late = utc("2026-06-10T23:00:00-04:00")
    assert night.next_open(late, NEW_YORK) == late
    assert night.next_open(utc("2026-06-10T12:00:00-04:00"), NEW_YORK) == utc(
        "2026-06-10T20:00:00-04:00"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [("10-19", "not a send window"), ("25:00-19:00", "hours run"), ("10:00-10:00", "empty")],
)
def test_bad_windows(text, message):
    with pytest.raises(ValueError, match=message):
        parse_window(text)


def test_unknown_zones_fall_back_to_the_shop_zone():
    shop = ZoneInfo("Europe/Berlin")
    assert zone_or("Mars/Olympus", shop) is shop
    assert zone_or(None, shop) is shop
    assert zone_or("Asia/Tokyo", shop) == ZoneInfo("Asia/Tokyo")


def _due_times_in_turn(
    anchor: datetime, delays: list[Delay], window: SendWindow | None, zone: ZoneInfo
) -> list[datetime]:
    due, times = anchor, []
    for delay in delays:
        due = delay.after(due, zone)
        if window is not None:
            due = window.next_open(due, zone)
        times.append(due)
    return times


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago"]
)
def test_due_times_are_the_delays_and_window_applied_in_turn_around_the_changes(zone):
    # Every half hour of the weeks around both changes, anchors in several offsets (as
    # events carry them), with windows that open or close inside the skipped hour.
    local = ZoneInfo(zone)
    schedules = [[Delay(days=1)], [Delay(days=7), Delay(days=5)], [Delay(days=2, seconds=90)]]
    schedules += [[Delay(seconds=300)], [Delay()], [Delay(days=1), Delay(seconds=3600)]]
    windows = [None, *(parse_window(w) for w in ("10:00-19:00", "20:00-08:00", "02:15-03:00"))]
    offsets = [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9, minutes=30))]
    for start, end in (("2026-03-01", "2026-04-12"), ("2026-09-20", "2026-11-08")):
        moment, stop = utc(start + "T00:00:00+00:00"), utc(end + "T00:00:00+00:00")
        while moment < stop:
            anchor = moment.astimezone(offsets[moment.minute // 30 % 3 - moment.hour % 2])
            for delays in schedules:
                for window in windows:
                    due = due_times(anchor, delays, window, local)
                    in_turn = _due_times_in_turn(anchor, delays, window, local)
                    assert due == in_turn, (anchor, delays, window)
                    assert all(d.tzinfo is UTC and d.fold == 0 for d in due)
            moment += timedelta(minutes=30)


def test_due_times_from_the_repeated_hour_keep_the_first_occurrence():
    window = parse_window("00:00-23:59")
    # 01:30 EST on 1 November 2026, the second 01:30 of the night (fold=1 locally)
    anchor = utc("2026-11-01T01:30:00-05:00")
    due = due_times(anchor, [Delay(days=1), Delay(days=1)], window, NEW_YORK)
    assert due == _due_times_in_turn(anchor, [Delay(days=1), Delay(days=1)], window, NEW_YORK)
    assert due[0] == utc("2026-11-02T01:30:00-05:00") and due[0].fold == 0


def test_no_zone_changes_its_clock_twice_within_two_days():
    # ``due_times`` tells a day with a change by the offsets of its two midnights, which two
    # changes in one day would hide. The transitions are read with the standard library's
    # pure Python implementation, the only one that shows them.
    from zoneinfo import _zoneinfo, available_timezones  # type: ignore[attr-defined]

    for key in sorted(available_timezones()):
        zone = _zoneinfo.ZoneInfo.no_cache(key)
        changes = list(zone._trans_utc)
        rule = zone._tz_after  # the changes after the listed ones, by rule
        if isinstance(rule, _zoneinfo._TZStr):
            after = datetime.fromtimestamp(changes[-1] if changes else 0, UTC).year + 1
            changes += sorted(t for year in (after, after + 1) for t in rule.transitions(year))
        gaps = [later - earlier for earlier, later in itertools.pairwise(changes)]
        assert min(gaps, default=2 * 86400) >= 2 * 86400, key
