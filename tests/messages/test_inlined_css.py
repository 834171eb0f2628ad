"""CSS inlined once per template file renders exactly what inlining each message rendered."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from test_rendering import CAMPAIGNS, CUSTOMERS

from postpurchase.messages.context import sample_context
from postpurchase.messages.inlined_css import (
    NotInlinable,
    inline_source,
    same_document,
    stylesheet,
)
from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, MessageRenderer
from postpurchase.messages.shop_profile import ShopProfile
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.shop_settings.directory import shop_directory

LOCALES = sorted({str(order["customer"].get("locale")) for order in CUSTOMERS.values()})
NORDIC = "northwind-nordic.myshopify.com"  # its own colours and logo in shops.example.yaml


@pytest.fixture(scope="module")
def both() -> tuple[MessageRenderer, MessageRenderer]:
    return MessageRenderer(DEFAULT_TEMPLATES_DIR), MessageRenderer(
        DEFAULT_TEMPLATES_DIR, css_once=False
    )


@pytest.fixture(scope="module")
def nordic(tmp_path_factory) -> ShopProfile:
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("var"),
        shops_file=PROJECT_ROOT / "config" / "shops.example.yaml",
    )
    profile = ShopProfile.of(shop_directory(settings).get(NORDIC), settings, b"inlined-css-key")
    assert profile.logo_url and profile.colours["primary"] == "#0b3954"
    return profile


def test_every_shipped_html_template_is_inlined_when_it_loads(both):
    once, _ = both
    layout, _, _ = once.env.loader.get_source(once.env, "email/_layout.html.j2")
    items, _, _ = once.env.loader.get_source(once.env, "email/_items.html.j2")
    assert "<style" not in layout and '<body style="margin: 0;' in layout
    assert '<table class="items" role="presentation" style="width: 100%;' in items
    assert '{% for item in order["items"] %}' in items  # Jinja comes through untouched
    # the shop's colours: in each element its rule applies to, as the expression they were
    assert "background: {{ shop.colours.background }};" in layout
    assert layout.count("{{ shop.colours.primary }}") == 2  # the header and its link
    html_files = {p.name for p in (DEFAULT_TEMPLATES_DIR / "email").glob("*.html.j2")}
    assert {name.removeprefix("email/") for name in once.env.loader.inlined} == html_files


@pytest.mark.parametrize("brand", ["engine's", "shop's own"])
@pytest.mark.parametrize("confirmed", [True, False])
@pytest.mark.parametrize("campaign", CAMPAIGNS)
@pytest.mark.parametrize("who", CUSTOMERS)
def test_rendered_email_is_the_same_document_as_inlining_each_message(
    both, shop, nordic, brand, campaign, who, confirmed, caplog
):
    once, each = both
    profile = nordic if brand == "shop's own" else shop
    context = sample_context(
        profile, campaign_id=campaign, order=CUSTOMERS[who], delivery_confirmed=confirmed
    )
    with caplog.at_level(logging.WARNING):
        new, old = once.render_email(campaign, context), each.render_email(campaign, context)

    assert (new.subject, new.text) == (old.subject, old.text)
    assert same_document(new.html, old.html)
    assert not caplog.records  # no template fell back to inlining each message
    assert once._inlined_ok and all(once._inlined_ok.values())
    assert profile.colours["primary"] in new.html and profile.colours["background"] in new.html
    assert (profile.logo_url or profile.name) in new.html.split('class="content"')[0]


def test_the_comparison_sees_a_missing_style_or_a_changed_attribute():
    document = '<p class="a" style="color: red;">Hi <b>Sam</b></p>'
    assert same_document(document, '<p style="color: red;" class="a">Hi  \n<b>Sam</b></p>')
    assert not same_document(document, '<p class="a">Hi <b>Sam</b></p>')
    assert not same_document(document, '<p class="a" style="color: blue;">Hi <b>Sam</b></p>')
    assert not same_document(document, '<p class="a" style="color: red;">Hi Sam</p>')
    assert not same_document(document, '<p class="a" style="color: red;">Hi<b>Sam</b></p>')
    # White space between a table's rows shows nowhere: where the parser put it is no change.
    table = "<table>\n<tbody><tr><td>a</td></tr></tbody></table>"
    assert same_document(table, "<table><tbody>\n  <tr><td>a</td></tr>\n</tbody></table>")


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ('<p class="{{ kind }}">x</p>', "class attribute"),
        ("<p {{ attributes }}>x</p>", "outside a quoted attribute"),
        ("<table>{% for r in rows %}<tr><td>{{ r }}</td></tr>{% endfor %}</table>", "adds"),
    ],
)
def test_a_source_that_cannot_be_inlined_ahead_says_why(source, why):
    with pytest.raises(NotInlinable, match=why):
        inline_source(source, "p { color: red; } td { padding: 1px; }")


def test_an_expression_in_a_css_value_goes_wherever_its_rule_applies():
    css = "p { color: {{ c.primary }}; } .none { color: {{ c.accent }}; }"
    source = '<p>a</p><p style="margin: 0 {{ c.gap }};">b</p>'
    inlined = inline_source(source, css)

    assert inlined.count('style="color: {{ c.primary }};') == 2
    assert "margin: 0 {{ c.gap }}" in inlined and "c.accent" not in inlined


@pytest.mark.parametrize(
    ("css", "source"),
    [
        ("{{ tag }} { color: red; }", "<p>x</p>"),  # a selector
        ("p.{{ kind }} { color: red; }", "<p>x</p>"),
        ("p { {{ property }}: red; }", "<p>x</p>"),  # a property name
        ("p { color: red; {{ more }} }", "<p>x</p>"),  # declarations of its own
        ("@media (max-width: {{ width }}) { p { color: red; } }", "<p>x</p>"),
        ("@media screen { p{{ state }} { color: red; } }", "<p>x</p>"),
        ("p { color: red; }", '<p style="{{ property }}: red;">x</p>'),
        ("p { color: red; }", '<p style="color: red; {{ more }}">x</p>'),
    ],
)
def test_jinja_that_could_change_which_rules_apply_is_not_inlined_ahead(css, source):
    with pytest.raises(NotInlinable, match="outside a declaration's value"):
        inline_source(source, css)
    # in a document's own <style> block too
    document = f"<html><head><style>{css}</style></head><body>{source}</body></html>"
    with pytest.raises(NotInlinable, match="outside a declaration's value"):
        inline_source(document, stylesheet({"email/x.html.j2": document}))


def test_a_jinja_statement_in_a_stylesheet_is_not_inlined_ahead():
    with pytest.raises(NotInlinable, match="statement"):
        inline_source("<p>x</p>", "p { color: red; }{% if x %} p { margin: 0; }{% endif %}")


def _templates(root: Path, css: str, content: str) -> Path:
    email = root / "email"
    email.mkdir(parents=True)
    (email / "_layout.html.j2").write_text(
        f"<!DOCTYPE html><html><head><style>{css}</style></head>"
        '<body><div class="content">{% block content %}{% endblock %}</div></body></html>'
    )
    (email / "note.html.j2").write_text(
        '{% extends "email/_layout.html.j2" %}{% block content %}' + content + "{% endblock %}"
    )
    (email / "note.subject.j2").write_text("A note")
    (email / "note.txt.j2").write_text("A note for {{ name }}")
    return root


def test_a_style_that_spans_files_falls_back_to_inlining_each_message(tmp_path, caplog):
    root = _templates(tmp_path, ".content p { color: red; }", "<p>Hi {{ name }}</p>")
    context = {"locale": "en", "name": "Sam", "shop": {}}
    with caplog.at_level(logging.WARNING):
        sent = MessageRenderer(root).render_email("note", context)
        again = MessageRenderer(root).render_email("note", context)

    assert '<p style="color: red;">Hi Sam</p>' in sent.html == again.html
    assert "a style spans files" in caplog.text


def test_a_stylesheet_with_sibling_selectors_is_inlined_for_each_message(tmp_path, caplog):
    root = _templates(tmp_path, "p:first-child { color: red; }", "<p>{{ name }}</p><p>2</p>")
    with caplog.at_level(logging.WARNING):
        renderer = MessageRenderer(root)
    html = renderer.render_email("note", {"locale": "en", "name": "Sam", "shop": {}}).html

    assert not renderer.env.loader.inlined and "inlined for each message" in caplog.text
    assert '<p style="color: red;">Sam</p><p>2</p>' in html
