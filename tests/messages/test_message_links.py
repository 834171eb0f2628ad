"""Links made as they are read (``links.review``, ``links.rewards``, each ``review_url``): the
strings an eager context held, signed for the same claims, and rendered by templates exactly
as those strings were."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from postpurchase.messages.context import LoyaltyFigures, ShopProfile, build_context
from postpurchase.messages.tokens import LinkClaim, sign, verify
from tests.messages.test_rendering import CAMPAIGNS

TEMPLATES = ["{review_page}", "{product_url}#write-a-review", "https://r.example/{handle}"]
WHEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
ODD_TITLE = "Café & Crème / 1 <b>"
ODD_PAGE = "https://shop.example.com/products/mug?size=l&colour=red"


def _line(title: str, product_id: str | None, product_url: str | None) -> SimpleNamespace:
    return SimpleNamespace(
        title=title,
        quantity=2,
        unit_price=Decimal("12.50"),
        product_id=product_id,
        image_url=None,
        product_url=product_url,
    )


def _context(shop: ShopProfile, campaign: str = "review_request") -> dict[str, Any]:
    """A context for customer 42 and touchpoint 1001 about an order of two variants of one
    product and a product without id whose title needs quoting."""
    order = SimpleNamespace(
        source="shopify",
        shop="",
        external_id="5801",
        name="#5801",
        currency="EUR",
        subtotal=Decimal("75.00"),
        total=Decimal("75.00"),
        total_tax=Decimal("0"),
        total_shipping=Decimal("0"),
        total_discounts=Decimal("0"),
        placed_at=WHEN,
        delivered_at=WHEN,
        delivery_confirmed_at=None,
        tracking_url=None,
        items=[
            _line("Mug - large", "p-1", ODD_PAGE),
            _line("Mug - small", "p-1", ODD_PAGE),
            _line(ODD_TITLE, None, None),
        ],
    )
    return build_context(
        shop,
        touchpoint=SimpleNamespace(id=1001, campaign_id=campaign, subject_key="order:1"),
        customer=SimpleNamespace(
            id=42,
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.org",
            locale="en",
            time_zone="Europe/London",
        ),
        order=order,
        loyalty=LoyaltyFigures(points_earned=75, points_balance=300, tier="Gold"),
    )


def _eager(context: dict[str, Any]) -> dict[str, Any]:
    """The context as plain dicts holding every link, as it was before links were lazy."""
    order = context["order"]
    return {
        **context,
        "links": dict(context["links"]),
        "order": {
            **order,
            "items": [dict(item) for item in order["items"]],
            "products": [dict(product) for product in order["products"]],
        },
    }


@pytest.mark.parametrize("template", TEMPLATES)
def test_lazy_links_are_those_signed_for_the_customer_and_touchpoint(shop, template):
    shop = replace(shop, review_link_template=template)
    context = _context(shop)
    links, base = context["links"], shop.public_base_url
    review_token = sign(shop.signing_key, LinkClaim("review", 42, 1001))
    review_page = f"{base}/r/{review_token}"

    assert links["review"] == review_page
    assert links["rewards"] == f"{base}/rewards/" + sign(
        shop.signing_key, LinkClaim("rewards", 42, 1001)
    )
    assert verify(shop.signing_key, links["review"].rsplit("/", 1)[1], "review") == LinkClaim(
        "review", 42, 1001
    )
    assert verify(shop.signing_key, links["rewards"].rsplit("/", 1)[1], "rewards") == LinkClaim(
        "rewards", 42, 1001
    )
    mug, odd = {
        "{review_page}": (
            f"{review_page}#id-p-1",
            f"{review_page}#title-Caf%C3%A9%20%26%20Cr%C3%A8me%20%2F%201%20%3Cb%3E",
        ),
        "{product_url}#write-a-review": (
            f"{ODD_PAGE}#write-a-review",
            f"{shop.url}#write-a-review",
        ),
        "https://r.example/{handle}": ("https://r.example/", "https://r.example/"),
    }[template]
    order = context["order"]
    assert [item["review_url"] for item in order["items"]] == [mug, mug, odd]
    assert [product["review_url"] for product in order["products"]] == [mug, odd]


def test_answer_links_are_made_when_read_signed_for_each_score(shop):
    links, base = _context(shop)["links"], shop.public_base_url

    for key, path, purpose, scores in (
        ("survey", "s", "survey", range(1, 6)),
        ("nps", "n", "nps", range(11)),
    ):
        assert links[key] is links[key]  # made once, then kept
        assert [link["score"] for link in links[key]] == list(scores)
        assert [link["url"] for link in links[key]] == [
            f"{base}/{path}/" + sign(shop.signing_key, LinkClaim(purpose, 42, 1001, score))
            for score in scores
        ]


def test_order_entries_read_as_the_dicts_they_replace(shop):
    order = _context(shop)["order"]
    product = order["products"][0]

    # before its review link is made, and after
    for _ in range(2):
        assert "review_url" in product and "nope" not in product
        assert list(product) == ["title", "quantity", "image_url", "product_url", "review_url"]
        assert len(product) == 5
        assert product == {
            "title": "Mug - large",
            "quantity": 4,  # both variants: one product to review
            "image_url": None,
            "product_url": ODD_PAGE,
            "review_url": f"{ODD_PAGE}#write-a-review",
        }
        assert repr(product) == repr(dict(product))
    assert list(order["items"][2]) == [
        "title",
        "quantity",
        "unit_price",
        "line_total",
        "image_url",
        "product_url",
        "review_url",
    ]
    assert order["items"][2]["line_total"] == Decimal("25.00")
    with pytest.raises(KeyError):
        order["items"][0]["nope"]
    links = _context(shop)["links"]
    assert list(links) == ["unsubscribe", "survey", "review", "nps", "loyalty", "rewards", "shop"]
    assert "rewards" in links and len(links) == 7
    with pytest.raises(KeyError):
        links["nope"]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("campaign", CAMPAIGNS)
def test_every_template_renders_lazy_links_as_the_eager_strings(renderer, shop, campaign, template):
    shop = replace(shop, review_link_template=template)
    eager = _eager(_context(shop, campaign))

    assert renderer.render_email(campaign, _context(shop, campaign)) == renderer.render_email(
        campaign, eager
    )
    assert renderer.render_sms(campaign, _context(shop, campaign), marketing=True) == (
        renderer.render_sms(campaign, eager, marketing=True)
    )


EXPRESSIONS = [
    "{{ links.review }} {{ links.rewards }} {{ links['review'] }} {{ links.shop }}",
    "{% autoescape true %}{{ links.review }} {{ links.rewards|e }} "
    "{% for p in order.products %}{{ p.review_url }} {{ p.title }}{% endfor %}{% endautoescape %}",
    "{{ links.review ~ '#x' }} {{ links.rewards + '?a=1' }} {{ links.review|urlencode }}",
    "{{ '/r/' in links.review }} {{ 'review' in links }} {{ 'nope' in links }} "
    "{{ links.review == links['review'] }} {{ links.review|length }} {{ links.rewards[:40] }}",
    "{{ links|length }} {{ links|list }} {{ links.keys()|list }} {{ links.get('rewards') }}",
    "{% for key, value in links|dictsort %}{% if value is string %}{{ key }}={{ value }}|"
    "{% endif %}{% endfor %}",
    "{{ links.review.startswith('http') }} {{ links.review|upper }} "
    "{{ links.review|truncate(30) }}",
    "{% for item in order['items'] %}{{ item.review_url }} {{ item|length }} {{ item|list }} "
    "{{ item.get('review_url') }} {{ item }} {{ item.items()|list }}{% endfor %}",
    "{{ order['products'][0].review_url if order['products'] else links.shop }} "
    "{{ links.nope is defined }} {{ order['items'][0].nope is defined }} "
    "{{ links.items is defined }}",
]


@pytest.mark.parametrize("source", EXPRESSIONS)
@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_read_lazy_links_as_the_eager_strings(renderer, shop, source, template):
    shop = replace(shop, review_link_template=template)
    eager = renderer.render_line(source, _eager(_context(shop)), name="eager")

    assert renderer.render_line(source, _context(shop), name="lazy") == eager


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{ links.nope }}", UndefinedError),
        ("{{ order['items'][0].nope }}", UndefinedError),
        ("{{ links._review_page.url }}", SecurityError),
        ("{{ order['items'][0]._fields }}", SecurityError),
        # read-only: a template cannot change its message's links
        ("{{ links.update({'review': 'https://evil.example'}) }}", UndefinedError),
    ],
)
def test_a_missing_private_or_changing_name_fails_the_message(renderer, shop, source, error):
    with pytest.raises(error):
        renderer.render_line(source, _context(shop), name="lazy")
