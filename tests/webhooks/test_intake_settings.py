import pytest

from postpurchase.exceptions import ConfigError
from postpurchase.settings import load_settings


def test_per_shop_secrets_are_read_as_json_and_never_shown(monkeypatch):
    monkeypatch.setenv(
        "POSTPURCHASE_SHOPIFY_WEBHOOK_SECRETS", '{"Second-Store.myshopify.com": "shpss_abc123"}'
    )
    monkeypatch.setenv("POSTPURCHASE_WEBHOOK_SECRET", "generic-secret-42")
    settings = load_settings()
    secret = settings.shopify_webhook_secrets["second-store.myshopify.com"]
    assert secret.get_secret_value() == "shpss_abc123"
    assert "shpss_abc123" not in repr(settings)
    assert "generic-secret-42" not in repr(settings)


def test_unparsable_secrets_name_the_variable(monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_SHOPIFY_WEBHOOK_SECRETS", "shop=secret")
    with pytest.raises(ConfigError, match="POSTPURCHASE_SHOPIFY_WEBHOOK_SECRETS"):
        load_settings()
