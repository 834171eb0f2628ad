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

# Templates quote their attributes and autoescape the values, so a value cannot end the
# attribute early; unquoted values are matched too, to be safe with a hand-written template.
_URL_ATTRIBUTE = re.compile(
    r"""\s+(href|src)\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+)""", re.IGNORECASE
)
# Browsers ignore ASCII tab and newline anywhere in a URL and leading/trailing control
# characters and spaces: "java\tscript:" is still javascript.
_IGNORED_IN_URL = re.compile(r"[\t\n\r]")
_CONTROL_AND_SPACE = "".join(chr(c) for c in range(0x21))


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
    """``document`` with every href/src that ``allowed_url`` refuses removed."""

    def keep_or_drop(match: re.Match[str]) -> str:
        raw = match.group(2)
        if raw[:1] in ("'", '"'):
            raw = raw[1:-1]
        return match.group(0) if allowed_url(html.unescape(raw), mailto=mailto) else ""

    return _URL_ATTRIBUTE.sub(keep_or_drop, document)
