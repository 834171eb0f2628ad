"""The settings of the optional features, as groups of fields that ``Settings`` inherits.

Spending points, the review page and review apps, the complaint loop, and privacy (retention,
exports) each have their own knobs. They are read with every other setting, once, by
``load_settings()`` (same ``POSTPURCHASE_`` variables, same ``.env`` file), so a process has
one ``Settings`` and a bad value is reported up front. Each group stays a type of its own: a
function that needs only the support settings says so (``support: SupportSettings``) and is
handed the one ``Settings``.

The platform credentials the rewards issuers share with product look-ups
(``POSTPURCHASE_SHOPIFY_ADMIN_TOKEN``, ``POSTPURCHASE_WOOCOMMERCE_*``) are fields of
``Settings`` itself.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class RewardsSettings(BaseModel):
    """Where reward codes are made, and the storefront API."""

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
    shopify_admin_url: str | None = Field(
        default=None, description="Another Admin API origin (a test double)."
    )
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


class ReviewSettings(BaseModel):
    """The review page and moderation."""

    review_edit_days: int = Field(
        default=30, ge=0, le=3650, description="Days a customer may edit a review after sending it."
    )
    review_blocked_words: str = Field(
        default="",
        description="Comma-separated words or phrases: a review containing one is held for a "
        "person (matched case-insensitively, as whole words).",
    )
    review_auto_publish: bool = Field(
        default=True,
        description="Publish a review nothing holds at once; false: every review waits for a "
        "person.",
    )

    @property
    def blocked_words(self) -> list[str]:
        return [w.strip() for w in self.review_blocked_words.split(",") if w.strip()]


class ReviewAppSettings(BaseModel):
    """Secrets of the review services whose webhooks are accepted (none: route answers 503)."""

    judgeme_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Judge.me's signing key: the OAuth app's secret, or the private API token "
        "the webhook was created with.",
    )
    yotpo_webhook_token: SecretStr | None = Field(
        default=None, description="The secret in the Yotpo webhook's URL: /webhooks/yotpo/TOKEN."
    )
    yotpo_app_key: str | None = Field(default=None, description="The shop's Yotpo app key.")


class SupportSettings(BaseModel):
    """The complaint loop: who hears of a negative answer at once."""

    support_email: str | None = Field(
        default=None,
        description="Where a negative answer is told at once, through the email channel.",
    )
    support_webhook_url: str | None = Field(
        default=None,
        description="A helpdesk or chat webhook that receives each negative answer as JSON.",
    )
    support_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs the webhook's body (X-Postpurchase-Signature: sha256=HMAC hex); "
        "without it the signing secret of links is used.",
    )
    support_notify_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts before a notification is given up."
    )
    support_webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class PrivacySettings(BaseModel):
    """How long personal data stays, and where a customer's data export goes."""

    payload_retention_days: int = Field(
        default=30,
        gt=0,
        description="Processed inbox payloads and provider event details keep customers' "
        "personal fields this long, then only what dedupe and audit need.",
    )
    privacy_export_dir: Path | None = Field(
        default=None,
        description="Where customer data exports are written. Default: privacy-exports "
        "under var_dir.",
    )
    privacy_export_to: Literal["folder", "email"] = Field(
        default="folder",
        description="Where a customer's data export goes: a file in privacy_export_dir, or an "
        "email (the JSON attached) to privacy_contact_email through the email channel.",
    )
    privacy_contact_email: str | None = Field(
        default=None,
        description="The shop's privacy contact, who receives emailed exports and answers the "
        "customer. Default: shop_support_email. A shop in shops.yaml may name its own "
        "(privacy_email, else its support_email).",
    )
