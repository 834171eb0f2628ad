"""Which URLs may become links in a sent email.

Product, image and tracking URLs come from the shop platform's webhooks, so a compromised or
careless catalogue can put ``javascript:``, ``data:`` or ``vbscript:`` there; autoescaping
does not help, as those are valid text. After rendering, every ``href`` and ``src`` in the
HTML is checked: only absolute http(s) URLs stay, and ``mailto:`` only to the shop's support
address. Any other attribute is removed, so the link text shows as plain text and a bad image
is not loaded.

Working on the rendered HTML (rather than on each context value) covers every template,
including ones added later, whatever variable they put in a link.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from urllib.parse import unquote, urlsplit

from postpurchase.messages.link_scans import leftmost_matches

# An href or src attribute after whitespace (names in any case: "\u017f" is the long s that
# case-insensitive matching takes for an s), found from the r of its name (see ``link_scans``:
# one pattern per case of the r, each match starting one character after the name does).
# Templates quote their attributes and autoescape the values, so a value cannot end the
# attribute early; unquoted values are matched too, to be safe with a hand-written template.
_URL_ATTRIBUTES = tuple(
    re.compile(
        rf"""{r}(?<=\s[HhSs\u017f]{r})(?:(?<=[Hh]{r})[Ee][Ff]|(?<=[Ss\u017f]{r})[Cc])"""
        r"""\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+)"""
    )
    for r in "rR"
)
# Browsers ignore ASCII tab and newline anywhere in a URL and leading/trailing control
# characters and spaces: "java\tscript:" is still javascript.
_IGNORED_IN_URL = re.compile(r"[\t\n\r]")
_CONTROL_AND_SPACE = "".join(chr(c) for c in range(0x21))
# An http(s) URL whose host (and port) is plain ASCII, then nothing or a path, query or
# fragment: ``allowed_url`` allows it whatever follows, as only the scheme and the host decide
# and no entity or ignored character can come before the first / ? or #. Most links of a
# message look so; this test costs a fraction of unescaping and parsing them.
_PLAIN_WEB_URL = re.compile(
    r"https?://[a-z0-9.\-]+(?::[0-9]*)?(?:[/?#].*)?", re.IGNORECASE | re.ASCII | re.DOTALL
)


def allowed_url(url: str, *, mailto: Collection[str] = ()) -> bool:
    """Whether ``url`` (as the browser will read it) may be a link or image source."""
    cleaned = _IGNORED_IN_URL.sub("", url).strip(_CONTROL_AND_SPACE)
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(parts.netloc)
    if scheme == "mailto":
        address = unquote(parts.path).strip().lower()
        return bool(address) and address in {m.lower() for m in mailto}
    return False


def strip_unsafe_links(document: str, *, mailto: Collection[str] = ()) -> str:
    """``document`` with every href/src that ``allowed_url`` refuses removed, with the
    whitespace before it."""
    pieces: list[str] = []
    kept = 0  # the document up to here is in pieces
    for match in leftmost_matches(_URL_ATTRIBUTES, document):
        raw = match.group(1)
        if raw[:1] in ("'", '"'):
            raw = raw[1:-1]
        if _PLAIN_WEB_URL.fullmatch(raw) or allowed_url(html.unescape(raw), mailto=mailto):
            continue
        start = match.start() - 1  # the name's first letter, before the r
        while start > kept and document[start - 1].isspace():
            start -= 1
        pieces.append(document[kept:start])
        kept = match.end()
    if not pieces:
        return document
    pieces.append(document[kept:])
    return "".join(pieces)
