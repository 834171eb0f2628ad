"""Delays and send windows: when a campaign step is due, in the customer's own clock.

A delay is written the way marketing says it (``3d``, ``2h30m``, ``1w``) or in ISO 8601
(``P3D``, ``PT2H30M``). Days and weeks are calendar days in the customer's time zone, so
"3 days after delivery at 14:00" is 14:00 three days later even across a daylight-saving
change; hours, minutes and seconds are elapsed time. Months and years are refused: their
length depends on the month, and nobody has asked for them.

A send window (``10:00-19:00``) is a local time range; a due time outside it moves to the next
opening. A window may wrap past midnight (``20:00-08:00``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HUMAN = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO = re.compile(
    r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_DAY = timedelta(days=1)
_MIDNIGHT = time(0)


@dataclass(frozen=True)
class Delay:
    """``days`` calendar days in the customer's zone, then ``seconds`` of elapsed time."""

    days: int = 0
    seconds: float = 0
    # Both as timedeltas, made once: planning adds them for every campaign of every event.
    _days: timedelta = field(init=False, repr=False, compare=False)
    _seconds: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_days", timedelta(days=self.days))
        object.__setattr__(self, "_seconds", timedelta(seconds=self.seconds))

    def after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The UTC time this delay after ``moment`` (aware), counting days on ``zone``'s clock."""
        if self.days:
            # An aware time plus a timedelta moves its wall clock and keeps its zone, with
            # fold=0: in the repeated hour after a DST fall-back, the first occurrence is meant.
            moment = moment.astimezone(zone) + self._days
        moment = moment.astimezone(UTC)
        return moment + self._seconds if self.seconds else moment


def parse_delay(text: str) -> Delay:
    """Parse ``3d``, ``2h30m``, ``1w2d``, ``0s`` or ISO 8601 ``P3D``/``PT2H30M``.

    Raises ValueError with the accepted forms when ``text`` is neither.
    """
    raw = text.strip()
    human = _HUMAN.match(raw)
    if raw and human:
        w, d, h, m, s = (int(g) if g else 0 for g in human.groups())
        return Delay(days=7 * w + d, seconds=3600 * h + 60 * m + s)
    iso = _ISO.match(raw.upper())
    if raw.upper() not in ("P", "PT") and iso:
        w, d = (int(g) if g else 0 for g in iso.groups()[:2])
        h, m = (int(g) if g else 0 for g in iso.groups()[2:4])
        return Delay(days=7 * w + d, seconds=3600 * h + 60 * m + float(iso.group(5) or 0))
    if re.match(r"^P.*\d+[MY]", raw.upper().split("T")[0]):
        raise ValueError(f"{text!r}: months and years are not supported, use days (e.g. 60d)")
    raise ValueError(
        f"{text!r} is not a duration; write e.g. 3d, 2h30m, 1w or ISO 8601 such as P3D, PT2H30M"
    )


@dataclass(frozen=True)
class SendWindow:
    """Local opening hours for sending, ``start`` inclusive and ``end`` exclusive."""

    start: time
    end: time

    def is_open(self, now: time) -> bool:
        """Whether the window is open at local time ``now``."""
        start, end = self.start, self.end
        # a window that ends before it starts wraps past midnight
        return start <= now < end if start < end else (now >= start or now < end)

    def next_open(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """``moment`` if it falls inside the window on ``zone``'s clock, else the next opening.

        Returned in UTC. An opening that does not exist locally (skipped by a DST jump) is
        taken at the same offset as before the jump, i.e. just after it.
        """
        local = moment.astimezone(zone)
        now = local.time()
        start = self.start
        if self.is_open(now):
            return moment.astimezone(UTC)
        day: date = local.date()
        if now >= start:  # past today's opening (and outside): tomorrow's
            day += _DAY
        return _opening(start, zone, day)


# Planning asks for the same few openings (a batch's zones, over the days its due times fall
# on) again and again: each is worked out once.
@lru_cache(maxsize=4096)
def _opening(start: time, zone: ZoneInfo, day: date) -> datetime:
    """``start`` on ``day`` on ``zone``'s clock, in UTC (an opening that does not exist
    locally is taken at the offset before the jump)."""
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)


@lru_cache(maxsize=4096)
def _steady_midnight(zone: ZoneInfo, day: date) -> datetime | None:
    """Local ``day``'s midnight in UTC, or None on a day ``zone``'s clock changes (skips or
    repeats some time): the offsets of the day's two midnights then differ.

    Two changes in one day would have the same offsets at both midnights; no zone of the
    time zone database has changes less than two days apart (``tests/campaigns`` checks).
    """
    midnight = datetime.combine(day, _MIDNIGHT, zone)
    if midnight.utcoffset() != datetime.combine(day + _DAY, _MIDNIGHT, zone).utcoffset():
        return None
    return midnight.astimezone(UTC)


# A moment on a zone's clock: its day, its time (fold=0, as days added to an aware time give
# it), and the time since the day's midnight.
_Clock = tuple[date, time, timedelta]


def _clock(moment: datetime, zone: ZoneInfo) -> _Clock:
    local = moment.astimezone(zone)
    day, now = local.date(), local.time()
    if now.fold:
        now = now.replace(fold=0)
    # one zone, so subtracted as wall clocks
    return day, now, local - datetime.combine(day, _MIDNIGHT, zone)


# Planning works out every campaign an event triggers in a row, from the event's time: the
# local clock of the last anchor is kept, known again by identity (hashing an aware time
# converts it).
_last_anchor: list[tuple[datetime, ZoneInfo, _Clock]] = []


def _anchor_clock(anchor: datetime, zone: ZoneInfo) -> _Clock:
    last = _last_anchor[0] if _last_anchor else None
    if last is not None and last[0] is anchor and last[1] is zone:
        return last[2]
    clock = _clock(anchor, zone)
    _last_anchor[:] = [(anchor, zone, clock)]
    return clock


def due_times(
    anchor: datetime, delays: Sequence[Delay], window: SendWindow | None, zone: ZoneInfo
) -> list[datetime]:
    """Each of ``delays`` after the due time before it (the first after ``anchor``), moved
    into ``window`` when there is one: what ``Delay.after`` then ``SendWindow.next_open``
    give in turn, in UTC.

    A delay of whole days lands on the same local time of a later day. On a day whose clock
    does not change (nearly every day) that is the day's midnight in UTC plus the time
    since, and the time tells whether the window is open: no conversion to and from the
    zone per due time, which planning works out for every campaign of every event.
    """
    due = anchor
    # ``due`` on the zone's clock, once known
    local = _anchor_clock(anchor, zone) if delays and delays[0].days else None
    times = []
    for delay in delays:
        midnight = None
        if delay.days and not delay.seconds:
            day, now, since = local or _clock(due, zone)
            day += delay._days
            midnight = _steady_midnight(zone, day)
        if midnight is None:
            due = delay.after(due, zone)
            local = None
            if window is not None:
                due = window.next_open(due, zone)
        elif window is None or window.is_open(now):
            due = midnight + since
            local = day, now, since
        else:
            if now >= window.start:  # past that day's opening: the next day's
                day += _DAY
            due = _opening(window.start, zone, day)
            local = None
        times.append(due)
    return times


def parse_window(text: str) -> SendWindow:
    """Parse ``HH:MM-HH:MM`` (local). Raises ValueError when malformed or empty."""
    match = _WINDOW.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a send window; write local hours like 10:00-19:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"{text!r}: hours run 00-23 and minutes 00-59")
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValueError(f"{text!r}: the window is empty (start equals end)")
    return SendWindow(start, end)


def zone_or(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The IANA zone called ``name``, or ``fallback`` when it is missing or unknown."""
    if not name:
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback
