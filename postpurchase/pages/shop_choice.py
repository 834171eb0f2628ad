"""Which shop a page shows: every shop's figures together, or one shop's alone.

``?shop=KEY`` chooses a shop by its key (``?shop=`` the default shop, whose key is ''); no
parameter shows every shop, as the pages did before there were several. The pages offer the
shops ``shops.yaml`` lists and the default one; an engine serving one shop offers no choice
and its pages look as they always did. The choice is carried on every link and form, so it
stays while one moves between the pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request

from postpurchase.exceptions import ConfigError
from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import ShopSettings, current_directory, default_shop

log = logging.getLogger(__name__)

# The selector's value for every shop; never in a link (no parameter means every shop).
EVERY_SHOP = "*"


@dataclass(frozen=True)
class ShopChoice:
    key: str | None  # None: every shop; '' the default shop
    # (key, label) of the shops to choose from; empty when the engine serves one shop
    options: tuple[tuple[str, str], ...]
    settings: ShopSettings  # the chosen shop's (the default shop's for every shop)

    @property
    def query(self) -> str:
        """What a link adds to keep the choice: '' for every shop, else ``?shop=KEY``."""
        return "" if self.key is None else f"?{urlencode({'shop': self.key})}"

    @property
    def chosen(self) -> ShopSettings | None:
        """The chosen shop's settings; None when every shop is shown."""
        return None if self.key is None else self.settings

    def name_of(self, key: str) -> str:
        """How the selector names the shop ``key`` (a shop it does not list: its key)."""
        return next((label for known, label in self.options if known == key), key)


def _label(shop: ShopSettings) -> str:
    return f"{shop.name} ({shop.key})" if shop.key else f"{shop.name} (default shop)"


def chosen_key(request: Request) -> str | None:
    """The shop key the request asks for; None for every shop."""
    key = request.query_params.get("shop")
    if key is None or key.strip() == EVERY_SHOP:
        return None
    return key.strip().lower()


def shop_choice(request: Request, settings: Settings) -> ShopChoice:
    """The shop ``request`` shows, with the shops it may choose from. A broken shops file
    offers no choice (the campaigns and health pages say what is wrong with the files), but
    a shop asked for by key is still shown alone."""
    key = chosen_key(request)
    try:
        directory = current_directory(settings)
    except ConfigError as exc:
        log.warning("pages: no shop choice offered: %s", exc)
        return ShopChoice(key, (), default_shop(settings))
    shops = [directory.default, *directory.configured()]
    options = tuple((s.key, _label(s)) for s in shops) if len(shops) > 1 else ()
    return ShopChoice(key, options, directory.default if key is None else directory.get(key))
