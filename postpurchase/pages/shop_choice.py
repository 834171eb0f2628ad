"""Which shop a page shows: every shop's figures together, or one shop's alone.

``?shop=KEY`` chooses a shop by its key (``?shop=`` the default shop, whose key is ''); no
parameter shows every shop, as the pages did before there were several. The pages offer the
shops ``shops.yaml`` lists, and those whose messages the outcomes run has measured though the
file does not list them (a store described by the engine's own settings has its domain as its
key); an engine whose file lists no shop offers no choice and its pages look as they always
did. The choice is carried on every link and form, so it stays while one moves between pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy import select

from postpurchase.exceptions import ConfigError
from postpurchase.pages.context import pages_context
from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import ShopSettings, current_directory, default_shop
from postpurchase.store.database import SessionFactory
from postpurchase.store.models import CampaignDay

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


def _label(shop: ShopSettings, key: str) -> str:
    return f"{shop.name} ({key})" if key else f"{shop.name} (default shop)"


def chosen_key(request: Request) -> str | None:
    """The shop key the request asks for; None for every shop."""
    key = request.query_params.get("shop")
    if key is None or key.strip() == EVERY_SHOP:
        return None
    return key.strip().lower()


def _measured_shops(factory: SessionFactory) -> set[str]:
    """The shops the outcomes run found messages of (a small table: read whole)."""
    with factory() as session:
        return set(session.scalars(select(CampaignDay.shop).distinct()))


def shop_choice(request: Request, settings: Settings) -> ShopChoice:
    """The shop ``request`` shows, with the shops it may choose from. A broken shops file
    offers no choice (the campaigns and health pages say what is wrong with the files), but
    a shop asked for by key is still shown alone."""
    key = chosen_key(request)
    try:
        directory = current_directory(settings)
    except ConfigError as exc:
        log.warning("pages: no shop choice offered: %s", exc)
        fallback = default_shop(settings)
        return ShopChoice(key, (), fallback if key is None else replace(fallback, key=key))
    # a shop the file does not list has the default shop's settings under its own key
    chosen = directory.default if key is None else replace(directory.get(key), key=key)
    listed = list(directory.configured())
    if not listed:
        return ShopChoice(key, (), chosen)
    known = {s.key for s in listed}
    measured = _measured_shops(pages_context(request).factory())
    unlisted = sorted(measured - known - {""})
    # the default shop ('') when rows carry it, or when no unlisted shop stands for the
    # engine's own settings
    default = [""] if "" in measured or not unlisted else []
    options = [(k, _label(directory.get(k), k)) for k in [*default, *unlisted]]
    options += [(s.key, _label(s, s.key)) for s in listed]
    return ShopChoice(key, tuple(options), chosen)
