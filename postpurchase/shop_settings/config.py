"""``config/shops.yaml``: the shops one engine serves, read into validated models.

Keys are shop keys as events carry them: the Shopify shop domain (``x.myshopify.com``), the
WooCommerce site's URL (``https://shop.example.de/``), or the generic event's ``shop``; in
lower case. Every field is
optional: what a shop leaves out is the engine's (``POSTPURCHASE_SHOP_*`` settings). Secrets
never sit in the file: a shop names the environment variable or Airflow connection that holds
them. Every problem is reported as ``FILE:LINE: message``, all of them at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.numbers import is_currency
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from postpurchase.exceptions import ConfigError
from postpurchase.yaml_source import SourceMap, read_yaml

# A shop key as events carry it: a Shopify domain, a WooCommerce site's URL, a generic
# event's shop; in lower case (looked up lower-cased), without spaces or quotes.
SHOP_KEY = r"^[^\sA-Z'\"<>]{1,255}$"
KEY_HINT = (
    "use the shop's key as its events carry it, in lower case: x.myshopify.com, a WooCommerce "
    "site's URL (https://shop.example.de/) or the generic events' shop"
)
_HEX_COLOUR = r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"
_HTTP_URL = r"^https?://[^\s\"'<>]+$"
_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sender(_Model):
    """The From of the shop's emails."""

    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str | None = Field(default=None, min_length=1, max_length=100)


class Colours(_Model):
    """Brand colours of the email layout (hex, as CSS takes them)."""

    primary: str | None = Field(default=None, pattern=_HEX_COLOUR)  # header, headings, buttons
    accent: str | None = Field(default=None, pattern=_HEX_COLOUR)  # points, highlights
    background: str | None = Field(default=None, pattern=_HEX_COLOUR)  # around the card


class SendGridAccount(_Model):
    """The shop's own SendGrid account: the key in an environment variable or in an Airflow
    connection (password = API key, like ``sendgrid_default``)."""

    api_key_env: str | None = Field(default=None, pattern=_ENV_NAME)
    connection: str | None = Field(default=None, min_length=1)
    sandbox: bool = False
    # the account's Event Webhook verification key (public, base64): its events are accepted
    event_public_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9+/=]{40,400}$")

    def problem(self) -> str | None:
        if (self.api_key_env is None) == (self.connection is None):
            return "give exactly one of api_key_env and connection"
        return None


class TwilioAccount(_Model):
    """The shop's own Twilio account: SID and token from the environment or a connection
    (login = Account SID, password = auth token, like ``twilio_default``)."""

    account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token_env: str | None = Field(default=None, pattern=_ENV_NAME)
    connection: str | None = Field(default=None, min_length=1)
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    from_number: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")

    def problem(self) -> str | None:
        direct = self.account_sid is not None or self.auth_token_env is not None
        if direct == (self.connection is not None):
            return "give either account_sid with auth_token_env, or connection"
        if direct and (self.account_sid is None or self.auth_token_env is None):
            return "account_sid and auth_token_env go together"
        if self.connection is None and not (self.messaging_service_sid or self.from_number):
            return "give messaging_service_sid or from_number"
        return None


class ShopEntry(_Model):
    """One shop as the file describes it; None: the engine's setting."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    url: str | None = Field(default=None, pattern=_HTTP_URL)
    support_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    # who receives the shop's emailed data exports; default its support_email
    privacy_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    # the answer to an SMS that says HELP; default one naming the shop and its support_email
    sms_help_text: str | None = Field(default=None, min_length=1, max_length=320)
    postal_address: str | None = Field(default=None, min_length=1)
    sender: Sender = Sender()
    logo_url: str | None = Field(default=None, pattern=r"^https://[^\s\"'<>]+$")
    colours: Colours = Colours()
    time_zone: str | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    locale: str | None = None
    public_base_url: str | None = Field(default=None, pattern=_HTTP_URL)
    sendgrid: SendGridAccount | None = None
    twilio: TwilioAccount | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str | None) -> str | None:
        if value is not None and not is_currency(value):
            raise ValueError(f"unknown currency {value!r}; use an ISO 4217 code such as EUR")
        return value

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Locale.parse(value.replace("-", "_"))
            except (ValueError, UnknownLocaleError):
                raise ValueError(f"unknown locale {value!r}; use e.g. en, fr or de_CH") from None
        return value


class ShopsConfig(_Model):
    version: Literal[1] = 1
    shops: dict[str, ShopEntry] = Field(default_factory=dict)


class ShopsFile:
    """The validated file and where each shop sits in it (for errors found later)."""

    def __init__(self, config: ShopsConfig, source: SourceMap | None) -> None:
        self.config = config
        self._source = source

    def where(self, key: str, *fields: str) -> str:
        """``file:line`` of a shop's field, for errors found after loading (an unset
        environment variable)."""
        if self._source is None:
            return "shops"
        return self._source.where(("shops", key, *fields))


def _message(error: ErrorDetails) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = f"{error['input']!r} is not valid here"
    names = [str(p) for p in loc[2:]] if len(loc) > 2 else [str(p) for p in loc]
    return f"{'.'.join(names)}: {message}" if names else message


def _problems(config: ShopsConfig, source: SourceMap) -> list[str]:
    problems = []
    for key, entry in config.shops.items():
        accounts: list[tuple[str, Any]] = [("sendgrid", entry.sendgrid), ("twilio", entry.twilio)]
        for name, account in accounts:
            problem = account.problem() if account is not None else None
            if problem:
                problems.append(f"{source.where(('shops', key, name))}: {name}: {problem}")
    return problems


def parse_shops(data: Any, source: SourceMap) -> ShopsFile:
    """Validate parsed YAML; ConfigError with one ``file:line: message`` per problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source.where(())}: expected a mapping with a 'shops' mapping")
    shops = data.get("shops")
    bad_keys = []
    if isinstance(shops, dict):
        for key in shops:
            if not isinstance(key, str) or not _is_shop_key(key):
                bad_keys.append(
                    f"{source.where(('shops', str(key)))}: shop key {key!r}: {KEY_HINT}"
                )
    try:
        config = ShopsConfig.model_validate(data)
    except ValidationError as exc:
        located = [(tuple(e["loc"]), _message(e)) for e in exc.errors()]
        raise ConfigError(
            "\n".join(bad_keys + [f"{source.where(at)}: {m}" for at, m in located])
        ) from None
    problems = bad_keys + _problems(config, source)
    if problems:
        raise ConfigError("\n".join(problems))
    return ShopsFile(config, source)


def _is_shop_key(key: str) -> bool:
    return re.fullmatch(SHOP_KEY, key) is not None


def load_shops(path: Path) -> ShopsFile:
    """Read and validate ``path``; a missing file is one shop, the engine's settings.

    Raises ConfigError listing every problem as ``file:line: message``.
    """
    if not path.exists():
        return ShopsFile(ShopsConfig(), None)
    data, source = read_yaml(path)
    return parse_shops(data, source)
