"""A shop key resolved into complete settings: the shop's own, the engine's for the rest.

``ShopDirectory.get("")`` is the default shop (the engine's settings alone); a key the file
does not list gets the same, so an event from a shop nobody configured still gets messages
in the engine's brand rather than none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from postpurchase.settings import Settings
from postpurchase.shop_settings.config import (
    SendGridAccount,
    ShopEntry,
    ShopsConfig,
    ShopsFile,
    TwilioAccount,
    load_shops,
)

# The email layout's colours when neither the shop nor the engine says otherwise.
DEFAULT_COLOURS = {"primary": "#1f3d36", "accent": "#b5832a", "background": "#f4f1ec"}


@dataclass(frozen=True)
class ShopSettings:
    """Everything about one shop that messages, pages and senders use; no field is unset
    but the optional logo and provider accounts (None: the engine's)."""

    key: str
    name: str
    url: str
    support_email: str
    privacy_email: str
    sms_help_text: str
    postal_address: str
    sender_email: str
    sender_name: str
    logo_url: str | None
    colours: dict[str, str]
    time_zone: str
    currency: str
    default_locale: str
    public_base_url: str
    sendgrid: SendGridAccount | None
    twilio: TwilioAccount | None
    # ``file:line`` of the shop's entry, for errors found when its accounts are opened
    origin: str


class ShopDirectory:
    """The shops of ``shops.yaml`` over the engine's settings, by shop key."""

    def __init__(self, settings: Settings, shops: ShopsFile) -> None:
        self._settings = settings
        self._file = shops
        self._default = self._resolve("", ShopEntry())
        self._shops = {key: self._resolve(key, entry) for key, entry in shops.config.shops.items()}

    def get(self, key: str) -> ShopSettings:
        """The shop ``key`` (any case); the default shop for '' or a key not configured."""
        return self._shops.get(key.strip().lower(), self._default)

    @property
    def default(self) -> ShopSettings:
        return self._default

    def configured(self) -> Iterator[ShopSettings]:
        """The shops the file lists (not the default one)."""
        return iter(self._shops.values())

    def where(self, key: str, *fields: str) -> str:
        return self._file.where(key, *fields)

    def _resolve(self, key: str, entry: ShopEntry) -> ShopSettings:
        s = self._settings
        name = entry.name or s.shop_name
        return ShopSettings(
            key=key,
            name=name,
            url=(entry.url or s.shop_url).rstrip("/"),
            support_email=entry.support_email or s.shop_support_email,
            privacy_email=entry.privacy_email
            or entry.support_email
            or s.privacy_contact_email
            or s.shop_support_email,
            sms_help_text=entry.sms_help_text or _help_text(entry, s),
            postal_address=entry.postal_address or s.shop_postal_address,
            sender_email=entry.sender.email or s.sender_email,
            # a shop with its own name signs with it unless it chose another sender name
            sender_name=entry.sender.name or entry.name or s.sender_name or name,
            logo_url=entry.logo_url or s.shop_logo_url,
            colours={
                part: getattr(entry.colours, part) or default
                for part, default in DEFAULT_COLOURS.items()
            },
            time_zone=entry.time_zone or s.shop_time_zone,
            currency=entry.currency or s.shop_currency,
            default_locale=entry.locale or s.default_locale,
            public_base_url=(entry.public_base_url or s.public_base_url).rstrip("/"),
            sendgrid=entry.sendgrid,
            twilio=entry.twilio,
            origin=self._file.where(key) if key else "settings",
        )


def _help_text(entry: ShopEntry, settings: Settings) -> str:
    """The HELP answer of a shop that wrote none: the engine's, unless the shop has a name or
    support address of its own (the engine's text names the engine's shop and address)."""
    if entry.name is None and entry.support_email is None:
        return settings.shop_sms_help_text
    name = entry.name or settings.shop_name
    contact = entry.support_email or settings.shop_support_email
    return (
        f"{name}: order updates and offers. Help: {contact}. "
        "Msg&data rates may apply. Reply STOP to opt out."
    )


def shop_directory(settings: Settings) -> ShopDirectory:
    """The directory of ``settings.shops_file`` (read each time: edits apply at the next
    task); ConfigError with ``file:line`` for every problem."""
    return ShopDirectory(settings, load_shops(settings.shops_file))


def default_shop(settings: Settings) -> ShopSettings:
    """The default shop alone, from ``settings`` (no file read): previews and checks."""
    return ShopDirectory(settings, ShopsFile(ShopsConfig(), None)).default


def current_directory(settings: Settings) -> ShopDirectory:
    """The directory for a long-running process (the webhook app's pages): the file is read
    again only when it changed, not at every request."""
    path = settings.shops_file
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:  # absent: one shop
        stamp = 0
    return ShopDirectory(settings, _read_once(path, stamp))


@lru_cache(maxsize=4)
def _read_once(path: Path, stamp: int) -> ShopsFile:
    return load_shops(path)
