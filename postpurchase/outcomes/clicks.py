"""Click links: every http(s) link of a message goes through ``/c/{token}`` on our own app.

The token (``messages/tokens.py``, HMAC with the shop's signing key) binds the touchpoint, the
link's place among the message's distinct links, how many there are, and the destination, so
a token cannot be pointed anywhere else and a click is counted whatever the channel or
provider. Our own links (unsubscribe, survey: under ``public_base_url``) are left alone: they
are actions, not clicks to measure, and must keep working exactly as signed.

Scanner detection happens when outcomes are refreshed, from what each click stored (see
``refresh``): a HEAD request, a click in the first seconds after the send or delivery, or two
different links of one message within two seconds (a person opens one link and lands in a
browser; a mail scanner fetches them all at once).
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase import feedback
from postpurchase.exceptions import InvalidInput
from postpurchase.messages.link_scans import leftmost_matches
from postpurchase.messages.rendering import RenderedEmail, RenderedSms
from postpurchase.messages.sms_segments import count_segments
from postpurchase.messages.tokens import sign_fields, verify_fields
from postpurchase.store.models import Touchpoint

_CODE = "c"
# An href's http(s) value, found from the r of "href" in either case (see
# ``messages.link_scans``): group 1 is the URL.
_HREFS = tuple(
    re.compile(rf'{r}(?<=[Hh]{r})[Ee][Ff]\s*=\s*"([Hh](?i:ttps?)://[^"]+)"') for r in "rR"
)
# A bare http(s) URL, found from its "://" (no letter to spell in two cases), its scheme
# looked back at ("\u017f" is the long s that case-insensitive matching takes for an s).
_BARE = re.compile(
    r"://(?:(?<=[Hh][Tt][Tt][Pp][Ss\u017f]://)|(?<=[Hh][Tt][Tt][Pp]://))[^\s<>\"'()\[\]]+"
)
_TRAILING = ".,;:!?"

# A click sooner than this after the send or delivery came from a machine.
SCANNER_SECONDS = 10
# Two different links of one message clicked this close together: a scanner.
BURST_SECONDS = 2


class Click(NamedTuple):
    """A verified click link: the message, which of its links, and where it goes (a named
    tuple: one is made for each link of each message)."""

    touchpoint_id: int
    link: int
    links: int
    url: str


def click_token(key: bytes, click: Click) -> str:
    return sign_fields(
        key, _CODE, [str(click.touchpoint_id), str(click.link), str(click.links), click.url]
    )


def read_click(key: bytes, token: str) -> Click:
    """The click inside ``token``; InvalidInput if forged, malformed or not an http(s) target."""
    touchpoint, link, links, url = verify_fields(key, token, _CODE, 4)
    if not _web(url):
        raise InvalidInput("click link does not lead to an http(s) address")
    try:
        return Click(int(touchpoint), int(link), int(links), url)
    except ValueError:
        raise InvalidInput("click link token is malformed") from None


def _web(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        # an address no browser could open (an unclosed IPv6 bracket, a host that changes
        # under NFKC normalisation): shop data can hold one, and it is no link to follow
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _href_urls(document: str) -> list[tuple[int, int, str]]:
    """Each http(s) URL of an href of ``document``: its span as written, and the URL."""
    return [
        (m.start(1), m.end(1), html.unescape(m.group(1)))
        for m in leftmost_matches(_HREFS, document)
    ]


def _bare_urls(text: str) -> list[tuple[int, str]]:
    """Each URL of ``text`` with where it starts (what follows it may be punctuation the URL
    leaves)."""
    urls = []
    for m in _BARE.finditer(text):
        start = m.start() - (4 if text[m.start() - 1] in "Pp" else 5)  # http or https
        urls.append((start, text[start : m.end()].rstrip(_TRAILING)))
    return urls


def _replaced(text: str, spans: list[tuple[int, int, str | None]]) -> str:
    """``text`` with each (start, end) span given a replacement replaced by it."""
    pieces: list[str] = []
    kept = 0
    for start, end, replacement in spans:
        if replacement is not None:
            pieces += (text[kept:start], replacement)
            kept = end
    return "".join((*pieces, text[kept:])) if pieces else text


def track_links(
    rendered: RenderedEmail | RenderedSms, *, key: bytes, base_url: str, touchpoint_id: int
) -> RenderedEmail | RenderedSms:
    """The message with each outside http(s) link replaced by its ``/c/`` link.

    Links are numbered by first appearance (HTML, then text), so the same destination in the
    HTML and the text part is one link. An SMS gets its segments counted again. Each part is
    read once: the links found are replaced where they were found.
    """
    base = base_url.rstrip("/")
    own = base + "/"

    def outside(url: str) -> bool:
        # our own links first: most of a message's links, and a prefix test costs less
        return not url.startswith(own) and _web(url)

    hrefs: list[tuple[int, int, str]] = []
    if isinstance(rendered, RenderedEmail):
        hrefs = _href_urls(rendered.html)
        bare = _bare_urls(rendered.text)
    else:
        bare = _bare_urls(rendered.body)
    found = [url for _, _, url in hrefs] + [url for _, url in bare]
    order = list(dict.fromkeys(url for url in found if outside(url)))
    if not order:
        return rendered
    links = {
        url: f"{base}/c/" + click_token(key, Click(touchpoint_id, n, len(order), url))
        for n, url in enumerate(order)
    }

    def in_text(text: str) -> str:
        # the URL's own part of the match: trailing punctuation stays as it was
        return _replaced(text, [(start, start + len(url), links.get(url)) for start, url in bare])

    if isinstance(rendered, RenderedEmail):
        html_part = _replaced(
            rendered.html,
            [
                (start, end, html.escape(links[url]) if url in links else None)
                for start, end, url in hrefs
            ],
        )
        return RenderedEmail(rendered.subject, html_part, in_text(rendered.text))
    body = in_text(rendered.body)
    return replace(rendered, body=body, segments=count_segments(body))


def record_unsubscribe(session: Session, *, touchpoint_id: int, now: datetime) -> None:
    """Count an unsubscribe through a message's own link against that message's campaign.

    Provider unsubscribes (SendGrid) arrive as message events already; this gives the
    one-click link the same standing. Once per touchpoint.
    """
    known = session.scalar(select(Touchpoint.id).where(Touchpoint.id == touchpoint_id))
    if known is None:
        return
    feedback.record_events(
        session,
        [
            {
                "provider": "link",
                "provider_event_id": f"unsubscribe:{touchpoint_id}",
                "touchpoint_id": touchpoint_id,
                "provider_message_id": None,
                "event": "unsubscribe",
                "occurred_at": now,
                "detail": {},
            }
        ],
    )
