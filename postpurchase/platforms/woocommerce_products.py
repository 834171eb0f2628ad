"""WooCommerce product webhooks (``product.created|updated|restored|deleted``, API v3).

A product webhook's body is the REST API's product (WooCommerce's webhook docs: "the response
is exactly the same as if requested via the REST API"). WooCommerce has no product type in
Shopify's sense (its ``type`` is simple, variable, grouped, external): its categories are
what shops sort products by, so the first category is the product's type and all of them
are its collections. ``Uncategorized``, the category WooCommerce gives a product nobody
sorted, says nothing and is left out. Names arrive HTML-escaped (``&amp;``, ``&ndash;``)
and are decoded here, once. A deletion carries only the id.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError

from postpurchase.events import CanonicalEvent, EventType
from postpurchase.platforms.fields import (
    GmtTimestamp,
    Identifier,
    InvalidPayload,
    PlatformModel,
    parse_as,
    problems_of,
)

TOPICS = frozenset({"product.created", "product.updated", "product.restored", "product.deleted"})
_UNSORTED = "uncategorized"


class Term(PlatformModel):
    name: str = ""
    slug: str | None = None


class Image(PlatformModel):
    src: str | None = None


class WooProduct(PlatformModel):
    id: Identifier
    name: str | None = None
    slug: str | None = None
    permalink: str | None = None
    status: str | None = None  # publish, draft, pending, private, trash
    categories: list[Term] = Field(default_factory=list)
    tags: list[Term] = Field(default_factory=list)
    images: list[Image] = Field(default_factory=list)
    date_modified_gmt: GmtTimestamp | None = None


class DeletedProduct(PlatformModel):
    id: Identifier


def _names(terms: list[Term], *, skip: str | None = None) -> list[str]:
    names: dict[str, None] = {}
    for term in terms:
        name = html.unescape(term.name).strip()
        if name and (skip is None or (term.slug or name.lower()) != skip):
            names.setdefault(name, None)
    return list(names)


def product_fields(product: WooProduct) -> dict[str, Any]:
    """The canonical product of a REST product (webhook body or API answer)."""
    categories = _names(product.categories, skip=_UNSORTED)
    return dict(
        external_id=product.id,
        title=html.unescape(product.name or "").strip() or None,
        product_type=categories[0] if categories else None,
        handle=product.slug or None,
        tags=_names(product.tags),
        collections=categories,
        image_url=next((i.src for i in product.images if i.src), None),
        # a draft's permalink is a preview link customers cannot open
        url=product.permalink if product.status in (None, "publish") else None,
        updated_at=product.date_modified_gmt,
    )


def normalise(topic: str, data: Any, *, received_at: datetime) -> CanonicalEvent:
    """The ``product.updated`` / ``product.deleted`` event of a product webhook; a restored
    product is an update. Raises InvalidPayload naming each wrong field."""
    if topic == "product.deleted":
        deleted = parse_as(DeletedProduct, data)
        event: dict[str, Any] = dict(
            type=EventType.PRODUCT_DELETED,
            occurred_at=received_at,
            product=dict(external_id=deleted.id),
        )
    else:
        product = parse_as(WooProduct, data)
        event = dict(
            type=EventType.PRODUCT_UPDATED,
            occurred_at=product.date_modified_gmt or received_at,
            product=product_fields(product),
        )
    try:
        return CanonicalEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidPayload(problems_of(exc, "canonical event: ")) from None


def dedupe_key_parts(webhook_id: str, event: CanonicalEvent, delivery_id: str) -> tuple[str, ...]:
    """What makes a product delivery unique: the webhook, the product and its modification
    time. A deletion has no time of its own, so its delivery id tells a second deletion (after
    a restore) from the first; WooCommerce does not retry, so it is no duplicate's key."""
    product = event.product
    assert product is not None
    if event.type is EventType.PRODUCT_DELETED:
        return (webhook_id, "product", product.external_id, "deleted", delivery_id or "-")
    modified = product.updated_at.isoformat() if product.updated_at else ""
    return (webhook_id, "product", product.external_id, modified)
