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
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase import feedback
from postpurchase.exceptions import InvalidInput
from postpurchase.messages.rendering import RenderedEmail, RenderedSms
from postpurchase.messages.sms_segments import count_segments
from postpurchase.messages.tokens import sign_fields, sign_joined, verify_fields
from postpurchase.store.models import Touchpoint

_CODE = "c"
# The characters ``\s`` matches (str.isspace), spelled out: a set of characters alone is
# tested from a table, while ``\s`` in a set is a call per character, and reading the URLs
# of a message was most of what its bare URLs cost (tests check it is the same set).
_SPACE = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# What may follow "://" in a bare URL, and in a link written in a document.
_URL_CHARS = rf"[^{_SPACE}<>\"'()\[\]]"
# An http(s) URL's scheme, looked back at from its "://" ("\u017f" is the long s that
# case-insensitive matching takes for an s).
_HTTP = "[Hh][Tt][Tt][Pp]://"
_HTTPS = "[Hh][Tt][Tt][Pp][Ss\u017f]://"
_BARE_SCHEME = f"(?:(?<={_HTTPS})|(?<={_HTTP}))"
_HREF_NAME = re.compile(r"[Hh][Rr][Ee][Ff]")
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


# ``_web`` for the links of messages: the same shop addresses come back in every message,
# each told apart once (``read_click`` splits what a click brings, kept out of this cache).
_web_link = lru_cache(maxsize=1024)(_web)


def _href_urls(document: str, own: str) -> list[tuple[int, int, str]]:
    r"""Each http(s) URL of an href of ``document`` but those written as our own (starting
    with ``own``): its span as written, and the URL. The hrefs are those
    ``[Hh](?i:ref)\s*=\s*"([Hh](?i:ttps?)://[^"]+)"`` finds, left to right."""
    pattern = _href_pattern(own)
    urls = []
    kept = -1  # the end of the href before
    at = 0
    while (m := pattern.search(document, at)) is not None:
        colon = m.start()
        start = colon - (4 if document[colon - 1] in "Pp" else 5)  # http or https
        # Not an href: its name ends the href before (the quote that closed it opens this
        # value), or it is another name than the one before the spaces.
        if start == kept or (m.start(1) >= 0 and not _href_name_before(document, start - 1)):
            at = colon + 1
            continue
        kept = at = m.end()
        if m.start(2) >= 0:
            urls.append((start, m.end(2), html.unescape(document[start : m.end(2)])))
    return urls


def _href_name_before(document: str, quote: int) -> bool:
    """Whether "href" (in any case) is before the "=" and the spaces before ``quote``."""
    at = quote
    while at and document[at - 1].isspace():
        at -= 1
    if not at or document[at - 1] != "=":
        return False
    at -= 1
    while at and document[at - 1].isspace():
        at -= 1
    return at >= 4 and _HREF_NAME.fullmatch(document, at - 4, at) is not None


@lru_cache(maxsize=16)
def _href_pattern(own: str) -> re.Pattern[str]:
    """The pattern of href values that are http(s) URLs, found from their "://" (literal
    characters, searched for without testing a set at each character: see
    ``messages.link_scans``; an email has about ten, against a hundred and more r's and
    sixty "="), the quote and the name looked back at: "href=", or (group 1 empty) spaces
    before the quote or the "=", for ``_href_name_before`` to look further back.

    A link of ours as written (``own``) is matched with group 2 empty; only the others are
    unescaped and checked. An ``own`` that unescaping could change is not told apart
    (``outside`` tells such links apart, unescaped).
    """
    head, _, tail = own.partition("://")
    own_href = ""
    if re.fullmatch(r'[Hh](?i:ttps?)://[^"]+', own) and "&" not in own:
        own_href = rf'(?<={re.escape(head)}://){re.escape(tail)}[^"]*|'
    named = [f'(?<=[Hh][Rr][Ee][Ff]="{scheme})' for scheme in (_HTTP, _HTTPS)]
    spaced = [
        f'(?<=[{_SPACE}]{between}"{scheme})' for between in ("", "=") for scheme in (_HTTP, _HTTPS)
    ]
    return re.compile(
        rf"://(?:{'|'.join(named)}|(?:{'|'.join(spaced)})())" rf'(?:{own_href}([^"]+))"'
    )


@lru_cache(maxsize=16)
def _bare_pattern(own: str) -> re.Pattern[str]:
    """The pattern of bare http(s) URLs, found from their "://", for messages whose own links
    start with ``own``: a link of ours as written is matched with group 1 empty (matched,
    not skipped, so that nothing inside it is taken for a link), so only the others are
    sliced and checked; most of a message's links are ours. An ``own`` the pattern would
    not match whole is not told apart (``outside`` tells such links apart)."""
    head, _, tail = own.partition("://")
    own_bare = ""
    if re.fullmatch(rf"[Hh](?i:ttps?)://{_URL_CHARS}+", own):
        # what signed tokens and paths are made of first: a set of ASCII characters is
        # read from a smaller table than _URL_CHARS (the match ends where it would)
        own_bare = rf"(?<={re.escape(head)}://){re.escape(tail)}[-./0-9A-Z_a-z]*{_URL_CHARS}*|"
    return re.compile(rf"://(?:{own_bare}{_BARE_SCHEME}({_URL_CHARS}+))")


def _bare_urls(text: str, own: str) -> list[tuple[int, str]]:
    """Each URL of ``text`` but those written as our own, with where it starts (what follows
    it may be punctuation the URL leaves)."""
    urls = []
    for m in _bare_pattern(own).finditer(text):
        if m.group(1) is not None:
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


@lru_cache(maxsize=16)
def _bases(base_url: str) -> tuple[str, str, str]:
    """For a ``public_base_url``: what our own links start with, and what click links start
    with, as text and as written in HTML."""
    base = base_url.rstrip("/")
    click = f"{base}/c/"
    return base + "/", click, html.escape(click)


def track_links(
    rendered: RenderedEmail | RenderedSms, *, key: bytes, base_url: str, touchpoint_id: int
) -> RenderedEmail | RenderedSms:
    """The message with each outside http(s) link replaced by its ``/c/`` link.

    Links are numbered by first appearance (HTML, then text), so the same destination in the
    HTML and the text part is one link. An SMS gets its segments counted again. Each part is
    read once: the links found are replaced where they were found.
    """
    own, click, click_in_html = _bases(base_url)

    def outside(url: str) -> bool:
        # our own links first (those the patterns could not leave out): a prefix test costs less
        return not url.startswith(own) and _web_link(url)

    hrefs: list[tuple[int, int, str]] = []
    if isinstance(rendered, RenderedEmail):
        hrefs = _href_urls(rendered.html, own)
        bare = _bare_urls(rendered.text, own)
    else:
        bare = _bare_urls(rendered.body, own)
    found = [url for _, _, url in hrefs] + [url for _, url in bare]
    order = list(dict.fromkeys(url for url in found if outside(url)))
    if not order:
        return rendered
    # click_token's payload, the fields every link of the message shares joined once
    first, counted = f"{_CODE}.{touchpoint_id}.", f".{len(order)}."
    tokens = {url: sign_joined(key, f"{first}{n}{counted}{url}") for n, url in enumerate(order)}

    def in_text(text: str) -> str:
        # the URL's own part of the match: trailing punctuation stays as it was
        return _replaced(
            text,
            [
                (start, start + len(url), click + tokens[url] if url in tokens else None)
                for start, url in bare
            ],
        )

    if isinstance(rendered, RenderedEmail):
        html_part = _replaced(
            rendered.html,
            [
                # a token has nothing to escape: only the address before it
                (start, end, click_in_html + tokens[url] if url in tokens else None)
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
