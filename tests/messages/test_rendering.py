"""Every shipped template renders for realistic customers, safely."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from babel.numbers import format_currency
from jinja2.exceptions import SecurityError, TemplatesNotFound, UndefinedError

from postpurchase.messages.context import LoyaltyFigures, sample_context
from postpurchase.messages.rendering import OPT_OUT_LINE, MessageRenderer
from postpurchase.messages.sandbox import TemplateTooLarge

CAMPAIGNS = [
    "delivery_checkin",
    "setup_tips",
    "review_request",
    "nps_survey",
    "service_recovery",
    "points_earned",
    "vip_welcome",
    "win_back",
    "reward_issued",
    "points_expiring",
]

LONG_TITLE = (
    "Ultra-Light Waterproof Hiking Backpack 38 L with Rain Cover, Hydration Sleeve, "
    "Ventilated Back Panel and Lifetime Warranty, Slate Grey"
)


def _order(title: str = "Aeropress Go", currency: str = "EUR", **customer: object) -> dict:
    return {
        "external_id": "9001",
        "name": "#9001",
        "currency": currency,
        "subtotal": "1234.50",
        "total": "1234.50",
        "placed_at": "2026-11-20T23:30:00Z",
        "lines": [
            {
                "external_id": "1",
                "title": title,
                "quantity": 2,
                "unit_price": "617.25",
                "product_url": "https://shop.example.com/products/9001",
            },
        ],
        "customer": {"external_id": "c1", **customer},
    }


CUSTOMERS = {
    "no first name": _order(first_name=None, locale="en"),
    "long product name": _order(LONG_TITLE, first_name="Sam", locale="en-GB"),
    "non-ascii name": _order(first_name="Zoë Þórdís 王芳", locale="de"),
    "french": _order(first_name="Amélie", locale="fr-FR", time_zone="Europe/Paris"),
    "script in data": _order(
        "<script>alert('title')</script>", first_name="<script>alert(1)</script>"
    ),
}


@pytest.mark.parametrize("campaign", CAMPAIGNS)
@pytest.mark.parametrize("who", CUSTOMERS)
def test_every_template_renders_for_realistic_customers(renderer, shop, campaign, who):
    context = sample_context(shop, campaign_id=campaign, order=CUSTOMERS[who])

    email = renderer.render_email(campaign, context)
    sms = renderer.render_sms(
        campaign, context, marketing=campaign in ("review_request", "win_back", "nps_survey")
    )

    assert email.subject and "\n" not in email.subject
    assert "<script>" not in email.html  # autoescaped; text and SMS are plain text
    assert "None" not in email.text and "None" not in email.html
    assert shop.postal_address in email.html and shop.postal_address in email.text
    assert context["links"]["unsubscribe"] in email.html
    assert "<style>" not in email.html and 'style="' in email.html  # CSS inlined
    assert sms.segments.segments >= 1


def test_neutral_greeting_without_first_name(renderer, shop):
    context = sample_context(shop, order=CUSTOMERS["no first name"])
    email = renderer.render_email("delivery_checkin", context)
    assert email.text.startswith("Hello,\n")
    assert "Hi ," not in email.html


def test_script_in_customer_data_is_escaped_in_html(renderer, shop):
    context = sample_context(shop, order=CUSTOMERS["script in data"])
    html = renderer.render_email("review_request", context).html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert('title')&lt;/script&gt;" in html


def test_locale_variant_wins_and_falls_back(renderer, shop):
    french = sample_context(shop, order=CUSTOMERS["french"])
    canadian = sample_context(shop, order=CUSTOMERS["french"], locale="fr-CA")
    german = sample_context(shop, order=CUSTOMERS["non-ascii name"])

    assert renderer.render_email("delivery_checkin", french).subject == (
        "Votre commande #9001 est-elle bien arrivée ?"
    )
    assert "Se désabonner" in renderer.render_email("delivery_checkin", canadian).html
    # No German variant: the default template, with a German greeting and number format.
    email = renderer.render_email("points_earned", german)
    assert email.subject.startswith("You earned")
    assert "Hallo Zoë Þórdís 王芳," in email.text
    assert "1.234,50\N{NO-BREAK SPACE}€" in email.text


def test_an_include_of_a_few_templates_takes_the_first_that_exists(renderer):
    env = renderer.env
    footer = ["email/_footer.de.html.j2", "email/_footer.fr.html.j2", "email/_footer.html.j2"]
    assert env.select_template(footer).name == "email/_footer.fr.html.j2"
    assert env.select_template(footer[::2]).name == "email/_footer.html.j2"
    with pytest.raises(TemplatesNotFound, match="_footer.de.html.j2.*_footer.xx.html.j2"):
        env.select_template(["email/_footer.de.html.j2", "email/_footer.xx.html.j2"])


def test_money_and_dates_follow_locale_and_zone(renderer, shop):
    order = _order(currency="JPY", first_name="Yuki", locale="ja", time_zone="Asia/Tokyo")
    order["total"] = "12800"
    context = sample_context(shop, order=order)
    assert context["order"]["total"] == Decimal("12800")
    text = renderer.render_email("points_earned", context).text
    assert "(￥12,800)" in text  # yen has no minor unit
    # 23:30 UTC on the 20th is already the 21st in Tokyo.
    delivered = renderer.render_email("delivery_checkin", context).text
    assert "2026年11月21日" in delivered


@pytest.mark.parametrize(
    "amount", [Decimal("129.00"), Decimal("129.0"), Decimal("-0.00"), 129, "1e3", " 7.5 ", 2.675]
)
@pytest.mark.parametrize("locale", ["en", "fr", "ja", "de-CH"])
def test_money_shows_each_amount_as_babel_formats_it(renderer, amount, locale):
    # Formatted amounts are kept for the next message: every kind of amount a template may
    # pass shows as Babel formats it, the same on the first message and the next.
    page = renderer.env.from_string("{{ amount | money('EUR') }}")
    expected = format_currency(Decimal(amount), "EUR", locale=locale.replace("-", "_"))
    for _ in range(2):
        assert page.render(amount=amount, locale=locale, shop={"currency": "JPY"}) == expected


def test_a_line_template_renders_each_context_with_the_sandbox(renderer, shop):
    # An A/B variant's subject: compiled once, rendered for each message's own context.
    line = "{{ loyalty.points_earned }} points are yours"
    for points in (129, 40):
        figures = LoyaltyFigures(points_earned=points, points_balance=2_000, tier=None)
        context = sample_context(shop, loyalty=figures)
        assert renderer.render_line(line, context, name="a subject") == f"{points} points are yours"
    with pytest.raises(SecurityError):
        renderer.render_line("{{ shop.__class__.__subclasses__() }}", context, name="a subject")


def test_a_line_template_has_the_limits_of_a_file(renderer, shop):
    # each range is small, and no value grows past the limit: only the limits of one whole
    # render (the range budget, the output) stop it
    line = (
        "{% for i in range(1000) %}{% for j in range(1000) %}{{ 'x' * 100 }}"
        "{% endfor %}{% endfor %}"
    )
    with pytest.raises(TemplateTooLarge, match=r"^template subject of win_back variant b: "):
        renderer.render_line(line, sample_context(shop), name="subject of win_back variant b")


def test_marketing_sms_carries_the_opt_out_line(renderer, shop):
    context = sample_context(shop)
    assert renderer.render_sms("win_back", context, marketing=True).body.endswith(OPT_OUT_LINE)
    assert OPT_OUT_LINE not in renderer.render_sms("points_earned", context, marketing=False).body


def test_sms_over_the_segment_limit_warns(shop):
    tight = MessageRenderer(renderer_dir(), sms_segment_limit=1)
    sms = tight.render_sms(
        "review_request", sample_context(shop, order=_order(LONG_TITLE)), marketing=True
    )
    assert sms.segments.segments >= 2
    assert sms.warnings and "over the limit of 1" in sms.warnings[0]


def renderer_dir():
    from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR

    return DEFAULT_TEMPLATES_DIR


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ customer.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    ],
)
def test_templates_cannot_reach_python_internals(renderer, shop, source):
    template = renderer.env.from_string(source)
    with pytest.raises((SecurityError, UndefinedError)):
        template.render(sample_context(shop))


def test_a_typo_in_a_template_is_an_error_not_an_empty_string(renderer, shop):
    with pytest.raises(UndefinedError):
        renderer.env.from_string("{{ customer.frist_name }}").render(sample_context(shop))


# What each delivery check-in says, confirmed (a carrier reported it) or assumed (fulfilled
# long enough ago): an assumed delivery never reads "was delivered on".
CHECKIN_WORDING = {
    "en": {
        True: ("How did your order #9001 arrive?", "was delivered on", "has been delivered"),
        False: ("Has your order #9001 arrived?", "should have arrived by now", "should have"),
    },
    "fr": {
        True: ("Votre commande #9001 est-elle bien arrivée ?", "a été livrée le", "a été livrée"),
        False: (
            "Avez-vous reçu votre commande #9001 ?",
            "devrait vous être parvenue",
            "devrait être arrivée",
        ),
    },
}


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("confirmed", [True, False])
def test_the_delivery_checkin_says_whether_delivery_was_confirmed_or_assumed(
    renderer, shop, locale, confirmed
):
    who = "french" if locale == "fr" else "long product name"
    context = sample_context(shop, order=CUSTOMERS[who], delivery_confirmed=confirmed)
    subject, body, sms_words = CHECKIN_WORDING[locale][confirmed]
    other_subject, other_body, other_sms = CHECKIN_WORDING[locale][not confirmed]

    email = renderer.render_email("delivery_checkin", context)
    sms = renderer.render_sms("delivery_checkin", context, marketing=False)

    assert email.subject == subject
    assert body in email.text and body in email.html.replace("&#39;", "'")
    assert other_body not in email.text and other_body not in email.html
    assert sms_words in sms.body and other_sms not in sms.body
    for claim in ("delivered on", "livrée le", "has been delivered", "a été livrée"):
        if not confirmed:
            assert claim not in email.text + email.html + sms.body


def test_the_nps_message_links_each_score_to_its_own_signed_page(renderer, shop):
    context = sample_context(shop, campaign_id="nps_survey", order=CUSTOMERS["french"])

    email = renderer.render_email("nps_survey", context)
    sms = renderer.render_sms("nps_survey", context, marketing=True)

    urls = [link["url"] for link in context["links"]["nps"]]
    assert [link["score"] for link in context["links"]["nps"]] == list(range(11))
    assert len(set(urls)) == 11 and all("/n/" in url for url in urls)
    assert all(url in email.text for url in urls)
    assert all(html.escape(url) in email.html for url in urls)
    assert urls[10] in sms.body


def test_service_recovery_gives_a_direct_way_to_reach_a_person(renderer, shop):
    context = sample_context(shop, campaign_id="service_recovery", order=CUSTOMERS["french"])

    email = renderer.render_email("service_recovery", context)

    assert f'href="mailto:{shop.support_email}?subject=Order%20%239001"' in email.html
    assert shop.support_email in email.text and "#9001" in email.subject
