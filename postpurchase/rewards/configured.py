"""The redeemer the settings ask for, with platform credentials from settings or Airflow
Connections (settings win when both are set):

- ``shopify_admin_default``: host = the shop's myshopify domain, password = the Admin API
  access token (scope ``write_discounts``), extra ``{"api_version": "2025-10"}``;
- ``woocommerce_default``: host = the site's URL, login = consumer key, password = consumer
  secret (a REST key with write access).

Rewards settings live here rather than in ``postpurchase.settings`` (same ``POSTPURCHASE_``
prefix and .env file): the spending side of loyalty is optional and self-contained.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from postpurchase.channels.configured import ConnectionLookup, no_connections
from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.rewards.platforms import CodeIssuer
from postpurchase.rewards.redeemer import Redeemer
from postpurchase.settings import ENV_PREFIX, Settings
from postpurchase.store.database import open_store


class RewardsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    rewards_platform: Literal["pool", "shopify", "woocommerce"] = Field(
        default="pool",
        description="Where reward codes are made: an imported code pool, Shopify or WooCommerce.",
    )
    rewards_code_prefix: str = Field(default="PP", pattern=r"^[A-Z0-9]{1,8}$")
    rewards_platform_timeout: float = Field(default=10.0, gt=0)
    rewards_attempts: int = Field(default=3, ge=1, description="Tries while a customer waits.")
    rewards_pending_after_minutes: float = Field(
        default=2.0, gt=0, description="Recovery completes redemptions pending longer than this."
    )
    shopify_shop_domain: str | None = Field(default=None, description="northwind.myshopify.com")
    shopify_admin_token: SecretStr | None = None
    shopify_api_version: str = "2025-10"
    shopify_admin_url: str | None = Field(
        default=None, description="Another Admin API origin (a test double)."
    )
    woocommerce_url: str | None = Field(default=None, description="https://shop.example.com")
    woocommerce_consumer_key: str | None = None
    woocommerce_consumer_secret: SecretStr | None = None
    # Storefront API (postpurchase.rewards.storefront)
    storefront_api_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Per key name, the key, as JSON: {"widget": "..."}; scopes below.',
    )
    storefront_api_scopes: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Per key name, its scopes: {"widget": ["read", "redeem"]}.',
    )
    storefront_origin: str | None = Field(
        default=None, description="The one origin allowed by CORS; default: shop_url."
    )
    storefront_requests_per_minute: int = Field(default=30, ge=1)

    @property
    def pending_after(self) -> timedelta:
        return timedelta(minutes=self.rewards_pending_after_minutes)


def load_rewards_settings() -> RewardsSettings:
    try:
        return RewardsSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(problems) from None


def code_issuer(
    rewards: RewardsSettings, *, connection: ConnectionLookup = no_connections
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
    rewards: RewardsSettings | None = None,
    *,
    connection: ConnectionLookup = no_connections,
) -> Redeemer:
    """A redeemer on the configured store and platform."""
    rewards = rewards or load_rewards_settings()
    return Redeemer(
        open_store(settings),
        config,
        code_issuer(rewards, connection=connection),
        code_prefix=rewards.rewards_code_prefix,
        attempts=rewards.rewards_attempts,
    )
