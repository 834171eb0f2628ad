"""What messages say about one shop and how their links are made: a shop's settings
(``shop_settings``) with the link-signing key, as the template context and renderers use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import DEFAULT_COLOURS, ShopSettings, default_shop


@dataclass(frozen=True)
class ShopProfile:
    """What messages say about one shop, how they look, and how their links are made."""

    name: str
    url: str
    support_email: str
    postal_address: str
    public_base_url: str  # the webhook app: /u/ and /s/ links
    loyalty_page_url: str
    review_link_template: str
    default_locale: str
    default_time_zone: str
    signing_key: bytes
    sender_email: str = "hello@shop.example.com"
    sender_name: str = ""  # "": the shop's name
    logo_url: str | None = None
    colours: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_COLOURS))
    currency: str = "USD"
    key: str = ""  # the shop key ('' the default shop)

    @classmethod
    def of(cls, shop: ShopSettings, settings: Settings, signing_key: bytes) -> ShopProfile:
        """The profile of one resolved shop (``shop_settings.ShopDirectory.get``)."""
        return cls(
            name=shop.name,
            url=shop.url,
            support_email=shop.support_email,
            postal_address=shop.postal_address,
            public_base_url=shop.public_base_url,
            loyalty_page_url=shop.url + settings.loyalty_page_path,
            review_link_template=settings.review_link_template,
            default_locale=shop.default_locale,
            default_time_zone=shop.time_zone,
            signing_key=signing_key,
            sender_email=shop.sender_email,
            sender_name=shop.sender_name,
            logo_url=shop.logo_url,
            colours=dict(shop.colours),
            currency=shop.currency,
            key=shop.key,
        )

    @classmethod
    def from_settings(cls, settings: Settings, signing_key: bytes) -> ShopProfile:
        """The default shop's profile: the engine's settings alone (no shops file read)."""
        return cls.of(default_shop(settings), settings, signing_key)
