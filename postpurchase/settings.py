"""Runtime settings, read from the environment (prefix ``POSTPURCHASE_``) or a ``.env`` file.

Settings are read when something runs, never when a DAG file is parsed, so a change needs no
restart of Airflow. ``load_settings()`` turns pydantic's validation errors into a ConfigError
that names the environment variable at fault.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from postpurchase.exceptions import ConfigError
from postpurchase.feature_settings import (
    PrivacySettings,
    ReviewAppSettings,
    ReviewSettings,
    RewardsSettings,
    SupportSettings,
)

ENV_PREFIX = "POSTPURCHASE_"
# The checkout the package is installed from (editable install): config/ and templates/ live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Drivers the store is written and tested for; anything else would fail in odd places later.
_SUPPORTED_BACKENDS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


class Settings(
    BaseSettings,
    RewardsSettings,
    ReviewSettings,
    ReviewAppSettings,
    SupportSettings,
    PrivacySettings,
):
    """Every knob of the engine. Field names map to ``POSTPURCHASE_<NAME>`` variables; the
    optional features' groups of fields are in ``feature_settings``."""

    # An empty variable (``KEY=`` in .env) means "not set", never an empty secret.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    var_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded default keeps its databases, Airflow home and outbox.",
    )
    database_url: str | None = Field(
        default=None,
        description="The engine's own database (never Airflow's). Default: SQLite in var_dir.",
    )
    database_connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the database before giving up."
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, gt=0, description="How long a SQLite writer waits for the lock."
    )
    claim_lease_seconds: int = Field(
        default=300, gt=0, description="How long a claimed touchpoint stays with its dispatcher."
    )
    drain_workers: int = Field(
        default=2,
        ge=1,
        le=32,
        description=(
            "Task instances that drain the inbox side by side in each processing run "
            "(PostgreSQL; on SQLite one, as it has a single writer)."
        ),
    )
    rejected_webhook_retention_days: int = Field(
        default=14, gt=0, description="Rejected webhooks older than this are pruned."
    )
    rejected_webhook_cap: int = Field(
        default=10_000, gt=0, description="At most this many rejected webhooks are kept."
    )
    campaigns_file: Path = Field(
        default=PROJECT_ROOT / "config" / "campaigns.yaml",
        description="The campaign configuration, read each time processing runs.",
    )
    loyalty_config: Path = Field(
        default=PROJECT_ROOT / "config" / "loyalty.yaml",
        description="Points, expiry and tiers; read each time processing or a refresh runs.",
    )
    templates_dir: Path = Field(
        default=PROJECT_ROOT / "templates",
        description="Jinja templates per channel: email/<name>.*.j2 and sms/<name>.txt.j2.",
    )
    shops_file: Path = Field(
        default=PROJECT_ROOT / "config" / "shops.yaml",
        description="Per-shop brand, zone, currency, locale, links and provider accounts "
        "(see config/shops.example.yaml); absent: one shop, described by the shop_* settings.",
    )
    shop_time_zone: str = Field(
        default="UTC",
        description="IANA zone for customers without one: send windows, quiet hours, dates.",
    )

    @field_validator("shop_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
        return value

    shop_country: str = Field(
        default="US",
        pattern=r"^[A-Z]{2}$",
        description="ISO country of the shop: phone numbers written without a country code "
        "are read as this country's when the order's addresses do not say.",
    )
    include_test_orders: bool = Field(
        default=False,
        description="Process Shopify test orders (test: true) like real ones; for developers. "
        "Off: they are recorded as ignored at intake and never reach customers or reports.",
    )

    # Webhook intake. Secrets are SecretStr so they never show in a repr, a log or an error.
    shopify_webhook_secret: SecretStr | None = Field(
        default=None, description="Shopify app client secret, for shops without their own."
    )
    shopify_webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Per shop domain, as JSON: {"shop.myshopify.com": "secret"}.',
    )
    woocommerce_webhook_secret: SecretStr | None = Field(
        default=None, description="The secret set on the WooCommerce webhooks."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Signs the generic /webhooks/events route."
    )
    webhook_tolerance_seconds: int = Field(
        default=300, gt=0, description="Generic events signed longer ago than this are replays."
    )
    webhook_max_body_bytes: int = Field(
        default=1_048_576, gt=0, description="Larger webhook bodies are refused with 413."
    )
    sendgrid_event_tolerance_seconds: int = Field(
        default=300, gt=0, description="SendGrid event batches signed longer ago are replays."
    )
    opt_out_spool_dir: Path | None = Field(
        default=None,
        description="STOP and unsubscribe requests received while the database is down wait "
        "here until it is back. Default: opt-out-spool under var_dir.",
    )
    api_docs: bool = Field(
        default=False, description="Serve /docs, /redoc and /openapi.json (off: they are public)."
    )

    # --- the platforms' APIs: looking up products first seen in an order --------------------
    shopify_shop: str | None = Field(
        default=None,
        description="The shop's myshopify domain for the Admin API (or its URL); else the "
        "Airflow connection shopify_admin (host).",
    )
    shopify_admin_token: SecretStr | None = Field(
        default=None,
        description="Admin API access token (read_products; write_discounts for rewards); "
        "else shopify_admin's password.",
    )
    shopify_api_version: str = Field(default="2025-10", description="Admin API version.")
    woocommerce_url: str | None = Field(
        default=None,
        description="The store's URL for the REST API; else the Airflow connection "
        "woocommerce_api (host).",
    )
    woocommerce_consumer_key: str | None = Field(
        default=None, description="REST API consumer key (read); else woocommerce_api's login."
    )
    woocommerce_consumer_secret: SecretStr | None = Field(
        default=None, description="REST API consumer secret; else woocommerce_api's password."
    )
    product_lookups_per_run: int = Field(
        default=50, ge=0, description="Unknown products looked up per processing run, at most."
    )
    platform_api_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long one product look-up may take."
    )

    @field_validator("shopify_webhook_secrets")
    @classmethod
    def _lower_shop_domains(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {domain.strip().lower(): secret for domain, secret in value.items()}

    # --- the shop, as messages show it -------------------------------------------------------
    shop_name: str = Field(default="Northwind Goods", description="Shown in every message.")
    shop_url: str = Field(
        default="https://shop.example.com", description="The storefront, for links in messages."
    )
    shop_support_email: str = Field(
        default="help@shop.example.com", description="Where customers can write for help."
    )
    shop_postal_address: str = Field(
        default="Northwind Goods Ltd, 12 Harbour Street, Portland, ME 04101, USA",
        description="Printed in every email footer (anti-spam laws require it).",
    )
    shop_sms_help_text: str = Field(
        default="Northwind Goods: order updates and offers. Help: help@shop.example.com. "
        "Msg&data rates may apply. Reply STOP to opt out.",
        description="The answer to an SMS that says HELP (a shop in shops.yaml may have its "
        "own: sms_help_text).",
    )
    shop_logo_url: str | None = Field(
        default=None,
        pattern=r"^https://[^\s\"'<>]+$",
        description="HTTPS URL of the logo in the email header; without it the shop's name.",
    )
    shop_currency: str = Field(
        default="USD",
        pattern=r"^[A-Z]{3}$",
        description="Currency of amounts that carry none in messages and pages (rewards).",
    )
    loyalty_page_path: str = Field(
        default="/pages/rewards", description="Path of the loyalty page under shop_url."
    )
    review_link_template: str = Field(
        default="{review_page}",
        description="Per-product review link: {review_page} (the order's hosted review page, "
        "at the product), or {product_url} (the product's page), {product_id} and {handle} "
        "for a review app of the shop's.",
    )
    sender_email: str = Field(default="hello@shop.example.com", description="Email From address.")
    sender_name: str | None = Field(
        default=None, description="Email From name; default the shop's name."
    )
    default_locale: str = Field(default="en", description="Locale for customers without one.")
    public_base_url: str = Field(
        default="http://localhost:8080/postpurchase",
        description="Public URL of the webhook app: links in messages and provider callbacks.",
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Key that signs unsubscribe and survey links, the same in every process. Required "
            "with PostgreSQL or SendGrid/Twilio; only the embedded default makes its own."
        ),
    )
    previous_signing_secrets: SecretStr | None = Field(
        default=None,
        description="Comma-separated older keys still accepted for links already sent (rotation).",
    )

    # --- channels ----------------------------------------------------------------------------
    email_channel: Literal["outbox", "sendgrid"] = Field(
        default="outbox", description="Where emails go: files under var/outbox, or SendGrid."
    )
    sms_channel: Literal["outbox", "twilio"] = Field(
        default="outbox", description="Where SMS go: files under var/outbox, or Twilio."
    )
    sendgrid_api_key: SecretStr | None = Field(
        default=None, description="SendGrid key; else the Airflow connection sendgrid_default."
    )
    sendgrid_host: str = Field(default="https://api.sendgrid.com", description="SendGrid API.")
    sendgrid_sandbox: bool = Field(
        default=False, description="SendGrid sandbox mode: accepted, validated, never delivered."
    )
    sendgrid_event_public_key: str | None = Field(
        default=None, description="Base64 public key that verifies SendGrid's signed events."
    )
    twilio_account_sid: str | None = Field(
        default=None, description="Twilio account; else the Airflow connection twilio_default."
    )
    twilio_auth_token: SecretStr | None = Field(default=None, description="Twilio auth token.")
    twilio_messaging_service_sid: str | None = Field(
        default=None, description="Send through this Messaging Service (preferred to a From)."
    )
    twilio_from_number: str | None = Field(default=None, description="E.164 sender number.")
    twilio_api_base_url: str | None = Field(
        default=None, description="Another Twilio API host (a test double); default the real one."
    )
    provider_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a send may take before its outcome is unknown."
    )
    send_attempts: int = Field(
        default=4, ge=1, description="Tries per message on 429, 5xx and connection errors."
    )
    max_retry_wait_seconds: float = Field(
        default=60.0, ge=0, description="Longest single wait between tries (X-RateLimit-Reset)."
    )
    email_rate_per_second: float = Field(
        default=50.0, gt=0, description="Emails per second across all workers."
    )
    sms_rate_per_second: float = Field(
        default=1.0, gt=0, description="SMS segments per second across all workers."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis shared by all workers for the rate limits; without it, per process.",
    )

    # --- gates ---------------------------------------------------------------------------------
    quiet_hours_start: time = Field(default=time(21, 0), description="No SMS from this hour...")
    quiet_hours_end: time = Field(default=time(9, 0), description="...until this one (local).")
    smart_sending_email_hours: float = Field(
        default=16.0, ge=0, description="At most one marketing email per customer per window."
    )
    smart_sending_sms_hours: float = Field(
        default=24.0, ge=0, description="At most one SMS per customer per window."
    )
    email_marketing_consent: Literal["opt_out", "opt_in"] = Field(
        default="opt_out",
        description=(
            "Marketing email to customers who never said yes or no: opt_out sends it (they can"
            " unsubscribe), opt_in needs a recorded yes. SMS marketing always needs a yes."
        ),
    )
    sms_segment_limit: int = Field(
        default=2, ge=1, description="Previews and validation warn above this many segments."
    )
    dispatch_chunk_size: int = Field(
        default=200, ge=1, description="Touchpoints per mapped dispatch task."
    )
    dispatch_send_concurrency: int = Field(
        default=16,
        ge=1,
        description="Sends in flight at once per dispatch task; a wave's marks share a commit.",
    )
    dispatch_max_chunks: int = Field(
        default=16, ge=1, description="Chunks claimed per dispatch run (the rest wait a minute)."
    )

    @field_validator("var_dir")
    @classmethod
    def _absolute_var_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def sqlalchemy_url(self) -> URL:
        """The database URL with its driver made explicit; raises ConfigError if unusable."""
        return parse_database_url(
            self.database_url or f"sqlite:///{self.var_dir / 'postpurchase.db'}"
        )


# scheme://user:password@host...: whatever sits between the first ':' after '//' and the last
# '@' is taken for the password, so a password containing ':' or '@' is hidden whole.
_URL_PASSWORD = re.compile(r"(?P<head>^[^:/]*:?//[^:/@]*:)(?P<password>.*)(?=@)", re.DOTALL)


def mask_password(raw: str) -> str:
    """``raw`` with the password of a URL-like string replaced by ``***``, parseable or not.

    Errors and logs show a malformed database URL this way, never its password.
    """
    return _URL_PASSWORD.sub(r"\g<head>***", raw, count=1)


def parse_database_url(raw: str) -> URL:
    """Parse and normalise a database URL (``postgresql://`` gets the psycopg 3 driver)."""
    setting = f"{ENV_PREFIX}DATABASE_URL"
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"{setting}: cannot parse {mask_password(raw)!r}; expected e.g. "
            "postgresql://user:password@host:5432/dbname or sqlite:////path/to/file.db"
        ) from None
    backend = url.get_backend_name()
    if backend not in _SUPPORTED_BACKENDS:
        raise ConfigError(
            f"{setting}: unsupported database {backend!r}; use postgresql:// or sqlite://"
        )
    if backend == "postgresql" and url.drivername != "postgresql+psycopg":
        url = url.set(drivername="postgresql+psycopg")
    if backend == "postgresql" and not url.database:
        raise ConfigError(f"{setting}: the URL names no database (…/dbname at the end)")
    return url


def load_settings() -> Settings:
    """Read settings from the environment; a bad value raises ConfigError naming the variable."""
    try:
        settings = Settings()
    except SettingsError as exc:  # a structured value (dict, list) that is not valid JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"{ENV_PREFIX}{field.group(1).upper()}" if field else "a POSTPURCHASE_ variable"
        raise ConfigError(f'{name}: must be JSON, e.g. {{"key": "value"}}') from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(problems) from None
    settings.sqlalchemy_url  # noqa: B018 - validate the URL up front, not at first use
    return settings
