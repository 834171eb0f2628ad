"""Each shop's own contacts where the engine had only one: the answer to an SMS that says
HELP (by the number, Messaging Service or account the customer texted) and the privacy
contact that receives emailed exports; the engine's where a shop sets none."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.fake_twilio import AUTH_TOKEN
from fastapi.testclient import TestClient

from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import shop_directory
from postpurchase.webhooks.app import create_app

BASE = "https://hooks.shop.example.com/postpurchase"
NORDIC, FRANCE = "northwind-nordic.myshopify.com", "https://northwind-goods.fr/"
NORDIC_SID = "AC0f9d4a6c2b8e41d7a3c5e9f1b2d4c6a8"
FRANCE_SERVICE = "MG5e7c9a1b3d5f7e9a1c3b5d7f9e1a3c5b"
SHOPS = f"""\
shops:
  {NORDIC}:
    name: Northwind Nordic
    support_email: hjelp@nordic.northwind.example
    privacy_email: personvern@nordic.northwind.example
    sms_help_text: "Northwind Nordic: hjelp@nordic.northwind.example. Svar STOP for å melde deg av."
    twilio:
      account_sid: {NORDIC_SID}
      auth_token_env: NORDIC_TWILIO_AUTH_TOKEN
      from_number: "+4791234567"
  "{FRANCE}":
    name: Northwind France
    support_email: aide@northwind-goods.fr
    twilio: {{connection: twilio_northwind_fr, messaging_service_sid: {FRANCE_SERVICE}}}
  plain.myshopify.com:
    currency: EUR
"""


def _settings(tmp_path: Path, **values) -> Settings:
    shops = tmp_path / "shops.yaml"
    shops.write_text(SHOPS, encoding="utf-8")
    return Settings(var_dir=tmp_path / "var", shops_file=shops, **values)


def test_a_shop_has_its_own_privacy_contact_else_its_support_else_the_engines(tmp_path):
    directory = shop_directory(_settings(tmp_path, privacy_contact_email="dpo@agency.example"))
    assert directory.get(NORDIC).privacy_email == "personvern@nordic.northwind.example"
    assert directory.get(FRANCE).privacy_email == "aide@northwind-goods.fr"
    assert directory.get("plain.myshopify.com").privacy_email == "dpo@agency.example"
    assert directory.default.privacy_email == "dpo@agency.example"
    assert shop_directory(_settings(tmp_path)).default.privacy_email == "help@shop.example.com"


def test_a_shops_help_text_names_the_shop_unless_it_has_no_brand_of_its_own(tmp_path):
    settings = _settings(tmp_path)
    directory = shop_directory(settings)
    assert directory.get(NORDIC).sms_help_text.startswith("Northwind Nordic: hjelp@")
    assert directory.get(FRANCE).sms_help_text == (
        "Northwind France: order updates and offers. Help: aide@northwind-goods.fr. "
        "Msg&data rates may apply. Reply STOP to opt out."
    )
    assert directory.get("plain.myshopify.com").sms_help_text == settings.shop_sms_help_text


@pytest.fixture
def client(db_url, tmp_path, monkeypatch, fake_twilio):
    shops = tmp_path / "shops.yaml"
    shops.write_text(SHOPS, encoding="utf-8")
    monkeypatch.setenv("POSTPURCHASE_SHOPS_FILE", str(shops))
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", db_url)
    monkeypatch.setenv("POSTPURCHASE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", "contacts-test-signing-secret")
    monkeypatch.setenv("POSTPURCHASE_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("NORDIC_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    with TestClient(create_app()) as test_client:
        yield test_client


def _help(client, fake_twilio, **to: str) -> str:
    path = "/webhooks/twilio/inbound"
    params = {"From": "+14155550123", "MessageSid": "SM1", "AccountSid": "AC1", "Body": "HELP"}
    params.update(to)
    signature = fake_twilio.sign(BASE + path, params)
    reply = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert reply.status_code == 200, reply.text
    return reply.text


def test_help_is_answered_in_the_brand_of_the_shop_texted(client, fake_twilio):
    nordic = _help(client, fake_twilio, To="+4791234567", AccountSid=NORDIC_SID)
    assert "<Message>Northwind Nordic: hjelp@nordic.northwind.example." in nordic
    france = _help(client, fake_twilio, To="+33612345678", MessagingServiceSid=FRANCE_SERVICE)
    assert "<Message>Northwind France: order updates and offers. Help: aide@" in france
    # the engine's own number: the engine's text
    engine = _help(client, fake_twilio, To="+14155559999")
    assert "<Message>Northwind Goods: order updates and offers." in engine
