"""The redeemer the settings ask for, with platform credentials from settings or Airflow
Connections (settings win when both are set):

- ``shopify_admin_default``: host = the shop's myshopify domain, password = the Admin API
  access token (scope ``write_discounts``), extra ``{"api_version": "2025-10"}``;
- ``woocommerce_default``: host = the site's URL, login = consumer key, password = consumer
  secret (a REST key with write access).

The rewards settings are a group of ``Settings`` (``postpurchase.feature_settings``).
"""

from __future__ import annotations

from postpurchase.channels.configured import ConnectionLookup, no_connections
from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.rewards.platforms import CodeIssuer
from postpurchase.rewards.redeemer import Redeemer
from postpurchase.settings import Settings
from postpurchase.store.database import SessionFactory, open_store


def code_issuer(
    rewards: Settings, *, connection: ConnectionLookup = no_connections
) -> CodeIssuer | None:
    """The configured platform's issuer (None for the code pool); ConfigError when its
    credentials are missing. ``connection``: Airflow's connections, passed in by the task
    bodies and entry points (this package never imports Airflow)."""
    if rewards.rewards_platform == "pool":
        return None
    timeout = rewards.rewards_platform_timeout
    if rewards.rewards_platform == "shopify":
        from postpurchase.rewards.shopify_discounts import ShopifyDiscounts

        conn = connection("shopify_admin_default") if rewards.shopify_admin_token is None else None
        token = (
            rewards.shopify_admin_token.get_secret_value()
            if rewards.shopify_admin_token
            else (conn or {}).get("password")
        )
        domain = rewards.shopify_shop_domain or (conn or {}).get("host")
        if not token or not domain:
            raise ConfigError(
                "POSTPURCHASE_REWARDS_PLATFORM=shopify needs POSTPURCHASE_SHOPIFY_SHOP_DOMAIN and "
                "POSTPURCHASE_SHOPIFY_ADMIN_TOKEN, or the Airflow connection shopify_admin_default"
            )
        version = ((conn or {}).get("extra") or {}).get(
            "api_version"
        ) or rewards.shopify_api_version
        return ShopifyDiscounts(
            domain, token, api_version=version, admin_url=rewards.shopify_admin_url, timeout=timeout
        )
    from postpurchase.rewards.woocommerce_coupons import WooCommerceCoupons

    conn = (
        connection("woocommerce_default") if rewards.woocommerce_consumer_secret is None else None
    )
    url = rewards.woocommerce_url or (conn or {}).get("host")
    key = rewards.woocommerce_consumer_key or (conn or {}).get("login")
    secret = (
        rewards.woocommerce_consumer_secret.get_secret_value()
        if rewards.woocommerce_consumer_secret
        else (conn or {}).get("password")
    )
    if not url or not key or not secret:
        raise ConfigError(
            "POSTPURCHASE_REWARDS_PLATFORM=woocommerce needs POSTPURCHASE_WOOCOMMERCE_URL, "
            "POSTPURCHASE_WOOCOMMERCE_CONSUMER_KEY and POSTPURCHASE_WOOCOMMERCE_CONSUMER_SECRET, "
            "or the Airflow connection woocommerce_default"
        )
    return WooCommerceCoupons(url, key, secret, timeout=timeout)


def configured_redeemer(
    settings: Settings,
    config: LoyaltyConfig,
    *,
    store: SessionFactory | None = None,
    connection: ConnectionLookup = no_connections,
) -> Redeemer:
    """A redeemer on the configured platform and ``store`` (default: the settings' database)."""
    return Redeemer(
        store or open_store(settings),
        config,
        code_issuer(settings, connection=connection),
        code_prefix=settings.rewards_code_prefix,
        attempts=settings.rewards_attempts,
    )
