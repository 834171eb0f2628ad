"""Runtime settings, read from the environment (prefix ``POSTPURCHASE_``) or a ``.env`` file.

Settings are read when something runs, never when a DAG file is parsed, so a change needs no
restart of Airflow. ``load_settings()`` turns pydantic's validation errors into a ConfigError
that names the environment variable at fault.
"""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from postpurchase.exceptions import ConfigError

ENV_PREFIX = "POSTPURCHASE_"
# The checkout the package is installed from (editable install): config/ and templates/ live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Drivers the store is written and tested for; anything else would fail in odd places later.
_SUPPORTED_BACKENDS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


class Settings(BaseSettings):
    """Every knob of the engine. Field names map to ``POSTPURCHASE_<NAME>`` variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
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
        default=300, gt=0, description="How long a claimed row stays with its claimant."
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
    shop_time_zone: str = Field(
        default="UTC",
        description="IANA zone for send windows when a customer's own zone is unknown.",
    )

    @field_validator("shop_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
        return value

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

    @field_validator("shopify_webhook_secrets")
    @classmethod
    def _lower_shop_domains(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {domain.strip().lower(): secret for domain, secret in value.items()}

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


def parse_database_url(raw: str) -> URL:
    """Parse and normalise a database URL (``postgresql://`` gets the psycopg 3 driver)."""
    setting = f"{ENV_PREFIX}DATABASE_URL"
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"{setting}: cannot parse {raw!r}; expected e.g. "
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
