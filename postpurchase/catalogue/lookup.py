"""Looking up products the catalogue has only seen in orders, through the platforms' APIs.

Runs as its own step after the inbox is drained, never inside it: planning never waits for a
platform. Each run asks for at most ``limit`` unknown products whose look-up is due, one
request each with a timeout, outside any database transaction; each answer is stored as a
``product.updated`` would be (a newer webhook still wins). When a platform refuses the
credentials, rate-limits, fails or does not answer, the run stops asking it; the products
stay unknown, with the error and a later ``lookup_after`` (backing off, or the platform's
Retry-After), and are asked again by a later run. A product the platform does not have
(404) is not asked again. Without credentials nothing is asked and products stay unknown
until a product webhook describes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update

from postpurchase.catalogue.platform_api import ProductApi
from postpurchase.catalogue.products import store_product_events
from postpurchase.events import CanonicalEvent, EventType
from postpurchase.exceptions import PlatformApiError
from postpurchase.store.database import SessionFactory, transaction
from postpurchase.store.models import Product
from postpurchase.stored_events import event_of

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
_FIRST_WAIT = timedelta(minutes=5)
_LONGEST_WAIT = timedelta(hours=6)


@dataclass
class LookupCounts:
    """What a look-up run did, and what is left."""

    found: int = 0
    not_on_platform: int = 0
    failed: int = 0
    waiting: int = 0  # unknown products of a platform with credentials, due later
    without_api: int = 0  # unknown products of platforms without credentials
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = (
            f"products looked up: {self.found} found, {self.not_on_platform} not on the "
            f"platform, {self.failed} failed (asked again later); {self.waiting} waiting for "
            f"a later look-up, {self.without_api} unknown without API credentials"
        )
        return "; ".join([text, *self.errors[:3]])


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """How long to wait before the ``attempts``-th look-up of a product (1 = first retry)."""
    factor: int = 2 ** min(max(attempts - 1, 0), 16)
    wait = min(_FIRST_WAIT * factor, _LONGEST_WAIT)
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait


def _unknown(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Unknown products whose look-up is due at ``now``."""
    return (
        Product.source_updated_at.is_(None),
        Product.lookup_attempts < MAX_ATTEMPTS,
        or_(Product.lookup_after.is_(None), Product.lookup_after <= now),
    )


def look_up_products(
    factory: SessionFactory, apis: Mapping[str, ProductApi], *, now: datetime, limit: int
) -> LookupCounts:
    """Ask ``apis`` (by source) for up to ``limit`` unknown products due at ``now``.

    The APIs' connections are closed at the end (a client opens again at its next call).
    """
    try:
        return _look_up(factory, apis, now=now, limit=limit)
    finally:
        for api in apis.values():
            api.close()


def _look_up(
    factory: SessionFactory, apis: Mapping[str, ProductApi], *, now: datetime, limit: int
) -> LookupCounts:
    counts = LookupCounts()
    with factory() as session:
        due = session.execute(
            select(
                Product.id,
                Product.source,
                Product.shop,
                Product.external_id,
                Product.lookup_attempts,
            )
            .where(*_unknown(now), Product.source.in_(list(apis)))
            .order_by(Product.id)
            .limit(limit)
        ).all()
    stopped: set[str] = set()
    for row in due:
        if row.source in stopped:
            continue
        try:
            snapshot = apis[row.source].fetch(row.external_id)
        except PlatformApiError as exc:
            counts.failed += 1
            counts.errors.append(str(exc))
            log.warning("product %s:%s: %s", row.source, row.external_id, exc)
            attempts = row.lookup_attempts + 1
            _mark(factory, row.id, attempts, now + backoff(attempts, exc.retry_after), str(exc))
            if exc.stop:
                stopped.add(row.source)
            continue
        if snapshot is None:
            counts.not_on_platform += 1
            _mark(factory, row.id, MAX_ATTEMPTS, None, "not found on the platform")
            continue
        event = CanonicalEvent(
            type=EventType.PRODUCT_UPDATED,
            occurred_at=snapshot.updated_at or now,
            product=snapshot,
        )
        with transaction(factory) as session:
            store_product_events(session, [(row.source, row.shop, event_of(event))])
        counts.found += 1
    with factory() as session:
        unknown = (
            select(Product.source, func.count())
            .where(Product.source_updated_at.is_(None), Product.lookup_attempts < MAX_ATTEMPTS)
            .group_by(Product.source)
        )
        for source, n in session.execute(unknown):
            if source in apis:
                counts.waiting += n
            else:
                counts.without_api += n
    return counts


def _mark(
    factory: SessionFactory, product_id: int, attempts: int, after: datetime | None, error: str
) -> None:
    with transaction(factory) as session:
        session.execute(
            update(Product)
            # a webhook may have described it meanwhile: then there is nothing to note
            .where(Product.id == product_id, Product.source_updated_at.is_(None))
            .values(lookup_attempts=attempts, lookup_after=after, lookup_error=error[:500])
            .execution_options(synchronize_session=False)
        )
