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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HUMAN = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO = re.compile(
    r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_DAY = timedelta(days=1)


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

    def next_open(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """``moment`` if it falls inside the window on ``zone``'s clock, else the next opening.

        Returned in UTC. An opening that does not exist locally (skipped by a DST jump) is
        taken at the same offset as before the jump, i.e. just after it.
        """
        local = moment.astimezone(zone)
        now = local.time()
        start, end = self.start, self.end
        # a window that ends before it starts wraps past midnight
        inside = start <= now < end if start < end else (now >= start or now < end)
        if inside:
            return moment.astimezone(UTC)
        day: date = local.date()
        if now >= start:  # past today's opening (and outside): tomorrow's
            day += _DAY
        return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)


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
