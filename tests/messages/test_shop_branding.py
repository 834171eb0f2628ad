"""Each shop's messages carry its own brand: name, footer address, logo, colours, locale,
currency; the default shop keeps the engine's."""

from __future__ import annotations

import re
from pathlib import Path

from postpurchase.messages.context import ShopProfile, sample_context
from postpurchase.messages.rendering import DEFAULT_TEMPLATES_DIR, MessageRenderer
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.shop_settings.directory import DEFAULT_COLOURS, shop_directory

KEY = b"shop-branding-test-key"
NORDIC = "northwind-nordic.myshopify.com"
FRENCH = "https://northwind-goods.fr/"  # a WooCommerce site: its URL


def _profiles(tmp_path: Path) -> dict[str, ShopProfile]:
    settings = Settings(var_dir=tmp_path, shops_file=PROJECT_ROOT / "config" / "shops.example.yaml")
    directory = shop_directory(settings)
    return {key: ShopProfile.of(directory.get(key), settings, KEY) for key in ("", NORDIC, FRENCH)}


def _order(currency: str, locale: str | None = None) -> dict:
    return {
        "external_id": "7120",
        "name": "#7120",
        "currency": currency,
        "subtotal": "1249.00",
        "total": "1249.00",
        "placed_at": "2026-11-27T09:15:00Z",
        "lines": [
            {
                "external_id": "1",
                "title": "Merino Wool Blanket",
                "quantity": 1,
                "unit_price": "1249.00",
                "product_url": "https://nordic.northwind.example/products/merino-blanket",
            }
        ],
        "customer": {"external_id": "c-7120", "first_name": "Ingrid", "locale": locale},
    }


def test_email_shows_the_shops_brand_in_header_footer_and_colours(tmp_path: Path) -> None:
    renderer = MessageRenderer(DEFAULT_TEMPLATES_DIR)
    shops = _profiles(tmp_path)
    nordic = renderer.render_email(
        "points_earned", sample_context(shops[NORDIC], order=_order("NOK", "en"))
    )
    assert 'src="https://cdn.northwind.example/nordic/logo.png"' in nordic.html
    assert 'alt="Northwind Nordic"' in nordic.html
    assert "Northwind Nordic AS, Karl Johans gate 25, 0159 Oslo, Norway" in nordic.html
    assert "Northwind Nordic AS, Karl Johans gate 25" in nordic.text
    assert "hjelp@nordic.northwind.example" in nordic.text
    # the layout's colours are the shop's (inlined into the elements' styles)
    assert "#0b3954" in nordic.html and "#f2f4f3" in nordic.html
    assert DEFAULT_COLOURS["primary"] not in nordic.html
    assert "Northwind Goods" not in nordic.html + nordic.text
    # links point at the shop's own public URL
    assert "https://engage.nordic.northwind.example/postpurchase/u/" in nordic.text

    default = renderer.render_email(
        "points_earned", sample_context(shops[""], order=_order("USD", "en"))
    )
    assert "<img" not in default.html.split('class="content"')[0]  # no logo: the name
    assert DEFAULT_COLOURS["primary"] in default.html
    assert Settings().shop_postal_address in default.html


def test_a_customer_without_a_locale_gets_the_shops_language_and_formats(
    tmp_path: Path,
) -> None:
    renderer = MessageRenderer(DEFAULT_TEMPLATES_DIR)
    french = sample_context(_profiles(tmp_path)[FRENCH], order=_order("EUR"))
    assert french["locale"] == "fr"
    email = renderer.render_email("delivery_checkin", french)
    assert "Northwind France SAS, 8 rue du Port, 44000 Nantes, France" in email.html
    assert "Se désabonner" in email.html  # the French footer
    totals = renderer.env.from_string("{{ order.total | money(order.currency) }}")
    assert _spaces(totals.render(french)) == "1 249,00 €"


def test_amounts_without_a_currency_are_in_the_shops_currency(tmp_path: Path) -> None:
    renderer = MessageRenderer(DEFAULT_TEMPLATES_DIR)
    shops = _profiles(tmp_path)
    reward = renderer.env.from_string("{{ 150 | money }}")
    # a Norwegian customer (the shop's default locale) reads Norwegian kroner, Norwegian style
    assert _spaces(reward.render(sample_context(shops[NORDIC]))) == "150,00 kr"
    assert reward.render(sample_context(shops[""], locale="en")) == "$150.00"


def test_sms_names_the_shop(tmp_path: Path) -> None:
    renderer = MessageRenderer(DEFAULT_TEMPLATES_DIR)
    context = sample_context(_profiles(tmp_path)[NORDIC], order=_order("NOK", "en"))
    sms = renderer.render_sms("review_request", context, marketing=True)
    assert sms.body.startswith("Northwind Nordic: Ingrid, how do you like Merino Wool Blanket?")


def _spaces(text: str) -> str:
    """Babel separates with no-break spaces; compare with plain ones."""
    return re.sub(r"[\u00a0\u202f]", " ", text)
