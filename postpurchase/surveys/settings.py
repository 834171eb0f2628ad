"""Settings of the complaint loop (environment, prefix ``POSTPURCHASE_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from postpurchase.exceptions import ConfigError
from postpurchase.settings import ENV_PREFIX


class SupportSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

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


def load_support_settings() -> SupportSettings:
    """ConfigError naming the variable when a value is unusable."""
    try:
        return SupportSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(problems) from None
