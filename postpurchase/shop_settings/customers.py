"""Which shop a hosted page speaks for: the shop of the customer its signed link names.

Unsubscribe, survey, review and rewards pages show the name and colours of the customer's
shop (``shops.yaml``). A page must still answer when the shops file is broken or the database
is away (an unsubscribe is spooled then), so both fall back to the engine's own shop.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from postpurchase.exceptions import ConfigError
from postpurchase.settings import Settings
from postpurchase.shop_settings.directory import ShopSettings, current_directory, default_shop
from postpurchase.store.database import SessionFactory, reading
from postpurchase.store.models import Customer

log = logging.getLogger(__name__)


def customer_shop(settings: Settings, store: SessionFactory, customer_id: int) -> ShopSettings:
    """The settings of ``customer_id``'s shop; the default shop when it cannot be told."""
    try:
        directory = current_directory(settings)
    except ConfigError as exc:
        log.error("hosted page shown in the default shop's brand: %s", exc)
        return default_shop(settings)
    try:
        with reading(store) as session:
            key = session.scalar(select(Customer.shop).where(Customer.id == customer_id))
    except SQLAlchemyError as exc:
        log.warning("hosted page: the customer's shop is unknown (%s)", type(exc).__name__)
        key = None
    return directory.get(key or "")
