"""How many SMS segments a text costs (what Twilio bills and throttles by).

GSM-7: 160 characters in one segment, 153 per segment once split; characters of the extension
table count twice. Any character outside GSM-7 switches the whole text to UCS-2: 70 in one
segment, 67 once split, and characters outside the Basic Multilingual Plane (most emoji) take
two UTF-16 units. A two-unit character is never split across segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SegmentCount:
    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def count_segments(text: str) -> SegmentCount:
    """The encoding, length in units and number of segments of ``text`` as one SMS."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text):
        widths = [2 if ch in _GSM7_EXTENSION else 1 for ch in text]
        return SegmentCount("GSM-7", sum(widths), _pack(widths, single=160, split=153))
    widths = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SegmentCount("UCS-2", sum(widths), _pack(widths, single=70, split=67))


def _pack(widths: list[int], *, single: int, split: int) -> int:
    total = sum(widths)
    if total <= single:
        return 1 if total else 0
    segments, used = 1, 0
    for width in widths:  # a two-unit character moves whole to the next segment
        if used + width > split:
            segments += 1
            used = 0
        used += width
    return segments
