"""Settings of the review page and moderation (environment, prefix ``POSTPURCHASE_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from postpurchase.exceptions import ConfigError
from postpurchase.settings import ENV_PREFIX


class ReviewSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

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


def load_review_settings() -> ReviewSettings:
    """ConfigError naming the variable when a value is unusable."""
    try:
        return ReviewSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(problems) from None


class ReviewAppSettings(BaseSettings):
    """Secrets of the review services whose webhooks are accepted (none: route answers 503)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    judgeme_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Judge.me's signing key: the OAuth app's secret, or the private API token "
        "the webhook was created with.",
    )
    yotpo_webhook_token: SecretStr | None = Field(
        default=None, description="The secret in the Yotpo webhook's URL: /webhooks/yotpo/TOKEN."
    )
    yotpo_app_key: str | None = Field(default=None, description="The shop's Yotpo app key.")


def load_review_app_settings() -> ReviewAppSettings:
    try:
        return ReviewAppSettings()
    except ValidationError as exc:
        raise ConfigError(f"review app settings: {exc.errors()[0]['msg']}") from None
