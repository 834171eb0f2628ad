"""Click tracking gives every message exactly the links it always did: the same token bytes
(links in sent emails keep verifying) and the same text around them.

``_reference`` is ``track_links`` as it was first written: each link signed on its own with
the standard library's HMAC, each address split again, the click address escaped with its
token. Shipped templates rendered for realistic customers, and hand-written messages with
what link scanning gets wrong most easily, go through both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from postpurchase.messages.context import LoyaltyFigures, sample_context
from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, RenderedEmail, RenderedSms
from postpurchase.messages.sms_segments import count_segments
from postpurchase.outcomes import clicks
from postpurchase.outcomes.clicks import Click, click_token, read_click, track_links

KEY = b"differential-click-key"
BASES = [
    "https://hooks.shop.example.com/postpurchase",
    "https://hooks.shop.example.com/postpurchase/",
    "HTTP://Hooks.Shop.example.com",
    "https://hooks.example.com/a&b",  # escaped in HTML, and not told apart by the patterns
    "https://hooks.example.com/pp?x=1",
]
# Every shipped campaign's templates (the localised ones are chosen by the context's locale).
CAMPAIGNS = sorted(
    path.name.removesuffix(".subject.j2")
    for path in (DEFAULT_TEMPLATES_DIR / "email").glob("*.subject.j2")
    if path.name.count(".") == 2
)


def _order(first_name: str | None, locale: str, *lines: dict) -> dict:
    return {
        "external_id": "9001",
        "name": "#9001",
        "currency": "EUR",
        "subtotal": "129.00",
        "total": "134.90",
        "tracking_url": "https://track.example.com/p/9001?lang=en&carrier=ups",
        "lines": [{"external_id": str(n), **line} for n, line in enumerate(lines, 1)],
        "customer": {"first_name": first_name, "locale": locale, "time_zone": "Europe/Paris"},
    }


SWEATER = {
    "title": "Merino Wool Crew Sweater",
    "quantity": 1,
    "unit_price": "129.00",
    "product_url": "https://shop.example.com/products/merino-crew",
    "image_url": "https://cdn.shop.example.com/merino.jpg",
}
KETTLE = {
    "title": 'Café kettle <1 L> & "stand"',
    "quantity": 2,
    "unit_price": "35.00",
    "product_url": "https://shop.example.com/products/café-kettle?size=1&colour=noir",
}
ORDERS = [
    _order("Amélie", "fr-FR", SWEATER, KETTLE),
    _order(None, "en", SWEATER),
    _order("Zoë Þórdís 王芳", "de", KETTLE, SWEATER, KETTLE),
]


def _reference(
    rendered: RenderedEmail | RenderedSms, *, key: bytes, base_url: str, touchpoint_id: int
) -> RenderedEmail | RenderedSms:
    base = base_url.rstrip("/")
    own = base + "/"

    def web(url: str) -> bool:
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and bool(parts.netloc)

    def token(link: int, links: int, url: str) -> str:
        payload = ".".join(["c", str(touchpoint_id), str(link), str(links), url]).encode()
        mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
        encoded = (base64.urlsafe_b64encode(raw).rstrip(b"=").decode() for raw in (payload, mac))
        return ".".join(encoded)

    def bare_urls(text: str) -> list[tuple[int, str]]:
        head, _, tail = own.partition("://")
        own_bare = ""
        if re.fullmatch(rf"[Hh](?i:ttps?)://{clicks._URL_CHARS}+", own):
            own_bare = rf"(?<={re.escape(head)}://){re.escape(tail)}{clicks._URL_CHARS}*|"
        pattern = rf"://(?:{own_bare}{clicks._BARE_SCHEME}({clicks._URL_CHARS}+))"
        urls = []
        for m in re.finditer(pattern, text):
            if m.group(1) is not None:
                start = m.start() - (4 if text[m.start() - 1] in "Pp" else 5)
                urls.append((start, text[start : m.end()].rstrip(".,;:!?")))
        return urls

    hrefs: list[tuple[int, int, str]] = []
    if isinstance(rendered, RenderedEmail):
        hrefs = clicks._href_urls(rendered.html, own)
        bare = bare_urls(rendered.text)
    else:
        bare = bare_urls(rendered.body)
    found = [url for _, _, url in hrefs] + [url for _, url in bare]
    order = list(dict.fromkeys(url for url in found if not url.startswith(own) and web(url)))
    if not order:
        return rendered
    links = {url: f"{base}/c/" + token(n, len(order), url) for n, url in enumerate(order)}

    def in_text(text: str) -> str:
        spans = [(start, start + len(url), links.get(url)) for start, url in bare]
        return clicks._replaced(text, spans)

    if isinstance(rendered, RenderedEmail):
        spans = [
            (start, end, html.escape(links[url]) if url in links else None)
            for start, end, url in hrefs
        ]
        html_part = clicks._replaced(rendered.html, spans)
        return RenderedEmail(rendered.subject, html_part, in_text(rendered.text))
    body = in_text(rendered.body)
    return replace(rendered, body=body, segments=count_segments(body))


def _same(rendered: RenderedEmail | RenderedSms, base_url: str, touchpoint_id: int) -> None:
    got = track_links(rendered, key=KEY, base_url=base_url, touchpoint_id=touchpoint_id)
    expected = _reference(rendered, key=KEY, base_url=base_url, touchpoint_id=touchpoint_id)
    assert got == expected


@pytest.mark.parametrize("campaign", CAMPAIGNS)
def test_shipped_templates_get_the_links_they_always_did(renderer, shop, campaign):
    loyalty = LoyaltyFigures(points_earned=130, points_balance=1250, tier="Gold")
    for n, order in enumerate(ORDERS):
        for base_url in (shop.public_base_url, *BASES):
            # the messages' own links (survey, unsubscribe) under the base they are told by
            context = sample_context(
                replace(shop, public_base_url=base_url),
                campaign_id=campaign,
                order=order,
                loyalty=loyalty,
            )
            email = renderer.render_email(campaign, context)
            sms = renderer.render_sms(campaign, context, marketing=n == 0)
            for touchpoint_id in (1, 987654321):
                _same(email, base_url, touchpoint_id)
                _same(sms, base_url, touchpoint_id)
            tracked = track_links(email, key=KEY, base_url=base_url, touchpoint_id=5)
            assert tracked != email  # each has links to track


OWN = "https://hooks.shop.example.com/postpurchase"
HTML_CASES = [
    # capitals, spaces around "=", entities in the address, the same address twice
    '<A HREF = "HTTPS://Shop.example.com/x?a=1&amp;b=2">x</A> '
    '<a href="https://shop.example.com/x?a=1&b=2">again</a>'
    '<a\thref=\n"http://shop.example.com/&#x65;&eacute;">e</a>',
    # our own links, written as ours and as no pattern tells apart
    f'<a href="{OWN}/u/abc.def">u</a><a href="{OWN.upper()}/s/x">s</a>'
    f'<a href="{OWN}/s/a&amp;b">amp</a><a href="{OWN}">base alone</a>',
    # no href: src, data-href, an attribute value that looks like one, a text href
    '<img src="https://cdn.example.com/a.png"><a data-href="https://shop.example.com/d">d</a>'
    '<a title=\'href="https://shop.example.com/t"\'>t</a> href="https://shop.example.com/h"',
    # what browsers cannot open, non-http schemes, non-ASCII, long s for an s
    '<a href="http://[::1">v6</a><a href="mailto:a@b.c">m</a><a href="ftp://f.example/x">f</a>'
    '<a href="https://bücher.example/straße?q=ü">ü</a><a href="http\u017f://x.example/">ſ</a>'
    '<a href="https://">empty</a><a href="HtTpS://MiXeD.example.com/Path">mixed</a>',
    "",
]
TEXT_CASES = [
    "See https://shop.example.com/x?a=1&b=2. Or (https://shop.example.com/y), "
    "https://shop.example.com/z!? and https://shop.example.com/x?a=1&b=2\n",
    f"Ours: {OWN}/u/abc.def.\nSurvey: {OWN}/s/tok-en_1.AbC?x=https://evil.example/q\n"
    f"{OWN.upper()}/s/X https://shop.example.com/after-ours;",
    "Unparsable: http://\u2100.example and http://[::1 and https://\u00e9.example/\u00e9\u3000next "
    "HTTPS://SHOP.EXAMPLE.COM/LOUD\u00a0https://shop.example.com/nbsp\u2028line",
    "no links at all: http:/ https:x ://nothing",
    "https://shop.example.com/x" + "a" * 300 + " <https://shop.example.com/angle> 'https://q.ex/1'",
]


@pytest.mark.parametrize("base_url", BASES)
def test_hand_written_messages_get_the_links_they_always_did(base_url):
    for page in HTML_CASES:
        for text in TEXT_CASES:
            _same(RenderedEmail("s", page, text), base_url, 42)
    for text in TEXT_CASES:
        _same(RenderedSms(text, count_segments(text)), base_url, 7)


def test_click_tokens_are_the_bytes_they_were():
    # tokens as links already sent carry them (signed before this version), still verifying
    url = "https://shop.example.com/products/merino-crew"
    sent = (
        "Yy40Mi4wLjIuaHR0cHM6Ly9zaG9wLmV4YW1wbGUuY29tL3Byb2R1Y3RzL21lcmluby1jcmV3"
        ".6-hqpcgZay_tiLw7KgbIKQ"
    )
    assert click_token(KEY, Click(42, 0, 2, url)) == sent
    assert read_click(KEY, sent) == Click(42, 0, 2, url)
    email = RenderedEmail("s", f'<a href="{url}">x</a><a href="https://shop.example.com">y</a>', "")
    tracked = track_links(email, key=KEY, base_url=OWN, touchpoint_id=42)
    assert isinstance(tracked, RenderedEmail)
    assert tracked.html.startswith(f'<a href="{OWN}/c/{sent}">x</a>')
