"""Links found from a literal character inside them (``link_scans``) are the links the
case-insensitive patterns they replaced found, on documents made of the pieces that could
trip them: names and schemes in every case, the long s, spaces of all kinds, quotes,
entities, URLs inside values and back to back."""

from __future__ import annotations

import html
import random
import re
from collections.abc import Collection

import pytest

from postpurchase.messages.link_scans import leftmost_matches
from postpurchase.messages.links import allowed_url, strip_unsafe_links
from postpurchase.outcomes.clicks import _SPACE, _bare_urls, _href_urls

# The patterns as they were, starting with the set of the first letter.
_URL_ATTRIBUTE = re.compile(
    r"""[HhSs\u017f](?<=\s[HhSs\u017f])(?:(?<=[Hh])[Rr][Ee][Ff]|(?<=[Ss\u017f])[Rr][Cc])"""
    r"""\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+)"""
)
_HREF = re.compile(r'([Hh](?i:ref)\s*=\s*")([Hh](?i:ttps?)://[^"]+)(")')
_BARE = re.compile(r"[Hh](?i:ttps?)://[^\s<>\"'()\[\]]+")

PIECES = [
    *" \t\n\xa0\x1c\u2003=\"'<>`()[].,axrRhHsS\u017f\u0130\u212a\u20acé",  # one character each
    *("href", "HREF", "hReF", "hrEf", "src", "SRC", "sRc", "\u017frc", "href=", "src="),
    *(' href="', " src='", " HREF = ", ' href="https://x.example/a"', 'HREF="http://'),
    *('hRef = "HTTPS://y.example', 'href="http\u017f://z'),
    *("http", "HTTP", "https", "httpS", "http\u017f", "://", "http://", "https://"),
    *("HTTPS://x", "https://a.example/p?q=1&amp;r=2", "javascript:alert(1)", "data:x"),
    *("mailto:help@shop.example.com", "&#106;avascript:"),
    # links of our own (see OWN), one with a link inside it
    *("https://x.example/", "https://x.example/u/t?next=https://y.example", "HTTPS://x.example/"),
    *("http://[::1]:8080/", "https://x.example/?a&amp;b/", "ftp://x.example/"),
]
# Prefixes of our own links, and whether the href and the bare URL patterns leave out the
# links written with them (those they would not match whole, or that unescaping could change,
# are left to ``track_links`` to tell apart after unescaping).
OWN = [
    ("https://x.example/", True, True),
    ("HTTPS://x.example/", True, True),
    ("http://[::1]:8080/", True, False),
    ("https://x.example/?a&amp;b/", False, True),
    ("ftp://x.example/", False, False),
]


def _documents(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60))) for _ in range(count)]


def _old_strip_unsafe_links(document: str, *, mailto: Collection[str] = ()) -> str:
    pieces: list[str] = []
    kept = 0
    for match in _URL_ATTRIBUTE.finditer(document):
        raw = match.group(1)
        if raw[:1] in ("'", '"'):
            raw = raw[1:-1]
        if allowed_url(html.unescape(raw), mailto=mailto):
            continue
        start = match.start()
        while start > kept and document[start - 1].isspace():
            start -= 1
        pieces.append(document[kept:start])
        kept = match.end()
    if not pieces:
        return document
    pieces.append(document[kept:])
    return "".join(pieces)


@pytest.mark.parametrize("seed", range(4))
def test_unsafe_links_are_found_as_before(seed):
    for document in _documents(2_500, seed):
        mailto = ["help@shop.example.com"]
        assert strip_unsafe_links(document, mailto=mailto) == _old_strip_unsafe_links(
            document, mailto=mailto
        ), repr(document)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("own", "hrefs_left_out", "bare_left_out"), OWN)
def test_click_links_are_found_as_before(seed, own, hrefs_left_out, bare_left_out):
    for document in _documents(2_500, seed):
        hrefs = [
            (m.start(2), m.end(2), html.unescape(m.group(2)))
            for m in _HREF.finditer(document)
            if not (hrefs_left_out and m.group(2).startswith(own))
        ]
        assert _href_urls(document, own) == hrefs, repr(document)
        urls = [(m.start(), m.group(0).rstrip(".,;:!?")) for m in _BARE.finditer(document)]
        bare = [(at, url) for at, url in urls if not (bare_left_out and url.startswith(own))]
        assert _bare_urls(document, own) == bare, repr(document)


def test_the_spaces_spelled_out_are_those_of_backslash_s():
    spaces = re.compile(rf"[{_SPACE}]")
    every = "".join(map(chr, range(0x110000)))
    assert spaces.findall(every) == re.findall(r"\s", every)


def test_leftmost_matches_skip_what_the_match_before_covered():
    patterns = [re.compile(r"a[^ ]*"), re.compile(r"b[^ ]*")]
    text = "xab ba b"
    merged = [m.group() for m in leftmost_matches(patterns, text)]
    assert merged == [m.group() for m in re.finditer(r"a[^ ]*|b[^ ]*", text)]
    assert merged == ["ab", "ba", "b"]
