"""config/shops.yaml: the shipped example loads, every mistake is named by file and line,
and a shop key resolves to the shop's settings over the engine's."""

from __future__ import annotations

from pathlib import Path

import pytest

from postpurchase.exceptions import ConfigError
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.shop_settings.config import load_shops
from postpurchase.shop_settings.directory import DEFAULT_COLOURS, ShopDirectory, shop_directory

EXAMPLE = PROJECT_ROOT / "config" / "shops.example.yaml"


def _settings(tmp_path: Path, shops_file: Path, **values: object) -> Settings:
    return Settings(var_dir=tmp_path, shops_file=shops_file, **values)  # type: ignore[arg-type]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shops.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_example_is_valid_and_resolves_each_shop(tmp_path: Path) -> None:
    directory = shop_directory(_settings(tmp_path, EXAMPLE, shop_time_zone="America/New_York"))
    nordic = directory.get("northwind-nordic.myshopify.com")
    assert nordic.name == "Northwind Nordic"
    assert nordic.sender_email == "hei@nordic.northwind.example"
    assert nordic.time_zone == "Europe/Oslo"
    assert nordic.currency == "NOK"
    assert nordic.colours["primary"] == "#0b3954"
    assert nordic.public_base_url == "https://engage.nordic.northwind.example/postpurchase"
    french = directory.get("https://northwind-goods.fr/")
    # what the shop leaves out is the engine's
    assert french.logo_url is None
    assert french.colours == DEFAULT_COLOURS
    assert french.sender_email == Settings().sender_email
    assert french.sender_name == "Northwind France"  # its own name signs its emails
    assert french.public_base_url == Settings().public_base_url


def test_without_a_file_every_key_is_the_default_shop_from_settings(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        tmp_path / "absent.yaml",
        shop_name="Harbour Tea",
        shop_time_zone="Europe/London",
        shop_currency="GBP",
        sender_name="Harbour Tea Team",
    )
    directory = shop_directory(settings)
    assert list(directory.configured()) == []
    for key in ("", "other-shop.myshopify.com"):
        shop = directory.get(key)
        assert (shop.key, shop.name, shop.time_zone, shop.currency) == (
            "",
            "Harbour Tea",
            "Europe/London",
            "GBP",
        )
        assert shop.sender_name == "Harbour Tea Team"


def test_shop_keys_are_matched_in_lower_case(tmp_path: Path) -> None:
    directory = shop_directory(_settings(tmp_path, EXAMPLE))
    assert directory.get("Northwind-Nordic.MyShopify.com ").name == "Northwind Nordic"


BAD = """\
version: 1
shops:
  nordic.myshopify.com:
    name: Nordic
    colours:
      primary: "red; background:url(https://evil.example)"
    time_zone: Europe/Olso
    currency: NKK
    locale: xx-invalid
    logo_url: http://cdn.example.com/logo.png
    twitter: "@nordic"
    sendgrid:
      api_key_env: NORDIC_KEY
      connection: sendgrid_nordic
    twilio:
      account_sid: AC0f9d4a6c2b8e41d7a3c5e9f1b2d4c6a8
  Upper Example.COM:
    name: Upper
"""


def test_every_mistake_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD)
    with pytest.raises(ConfigError) as caught:
        load_shops(path)
    lines = str(caught.value).splitlines()
    where = str(path)

    def line_of(fragment: str) -> str:
        found = [line for line in lines if fragment in line]
        assert found, f"{fragment!r} not in {lines}"
        return found[0]

    assert line_of("Upper Example.COM").startswith(f"{where}:17:")
    assert line_of("colours.primary").startswith(f"{where}:6:")
    assert "unknown time zone 'Europe/Olso'" in line_of(f"{where}:7:")
    assert "unknown currency 'NKK'" in line_of(f"{where}:8:")
    assert "unknown locale" in line_of(f"{where}:9:")
    assert line_of("logo_url").startswith(f"{where}:10:")
    assert "unknown key 'twitter'" in line_of(f"{where}:11:")


def test_provider_accounts_must_say_where_their_secret_is(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "shops:\n"
        "  nordic.myshopify.com:\n"
        "    sendgrid:\n"
        "      api_key_env: NORDIC_KEY\n"
        "      connection: sendgrid_nordic\n"
        "    twilio:\n"
        "      account_sid: AC0f9d4a6c2b8e41d7a3c5e9f1b2d4c6a8\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_shops(path)
    assert str(caught.value).splitlines() == [
        f"{path}:3: sendgrid: give exactly one of api_key_env and connection",
        f"{path}:6: twilio: account_sid and auth_token_env go together",
    ]


def test_invalid_yaml_and_duplicate_shops_name_the_line(tmp_path: Path) -> None:
    text = "shops:\n  a.example.com:\n    name: A\n  a.example.com:\n    name: B\n"
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"{path}:4: duplicate key 'a.example.com'"):
        load_shops(path)


def test_a_directory_over_settings_fills_what_the_shop_leaves_out(tmp_path: Path) -> None:
    path = _write(tmp_path, "shops:\n  b.example.com:\n    colours: {accent: '#123'}\n")
    settings = _settings(tmp_path, path, shop_logo_url="https://cdn.example.com/engine.png")
    shop = ShopDirectory(settings, load_shops(path)).get("b.example.com")
    assert shop.key == "b.example.com"
    assert shop.colours == {**DEFAULT_COLOURS, "accent": "#123"}
    assert shop.logo_url == "https://cdn.example.com/engine.png"
    assert shop.origin == f"{path}:2"
