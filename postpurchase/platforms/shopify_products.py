"""Shopify product webhooks (``products/create|update|delete``) to ``product.*`` events.

The body is the REST product resource, the same as the Admin API's ``{"product": ...}``
without the wrapper: ``product_type``, ``vendor``, ``handle``, ``tags`` (one comma-separated
string), ``image`` / ``images`` and ``updated_at``. It carries no collections. A deletion
carries only the product's id, and is dated by Shopify's triggered-at time. The product's
page is ``https://<shop domain>/products/<handle>``: the shop's myshopify domain, which
Shopify redirects to the shop's primary domain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError

from postpurchase.events import CanonicalEvent, EventType
from postpurchase.platforms.fields import (
    Identifier,
    InvalidPayload,
    PlatformModel,
    Timestamp,
    parse_as,
    problems_of,
)

TOPICS = frozenset({"products/create", "products/update", "products/delete"})


class Image(PlatformModel):
    src: str | None = None


class ShopifyProduct(PlatformModel):
    id: Identifier
    title: str | None = None
    product_type: str | None = None
    vendor: str | None = None
    handle: str | None = None
    tags: str | None = None
    status: str | None = None  # active, draft, archived
    image: Image | None = None
    images: list[Image] = Field(default_factory=list)
    updated_at: Timestamp | None = None


class DeletedProduct(PlatformModel):
    id: Identifier


def split_tags(tags: str | None) -> list[str]:
    """Shopify's comma-separated tags as a list, blanks dropped, first occurrence kept."""
    seen: dict[str, None] = {}
    for tag in (tags or "").split(","):
        if tag.strip():
            seen.setdefault(tag.strip(), None)
    return list(seen)


def product_fields(product: ShopifyProduct, shop: str | None) -> dict[str, Any]:
    """The canonical product of a REST product resource (webhook body or Admin API)."""
    images = [product.image] if product.image else []
    images += product.images
    image = next((i.src for i in images if i.src), None)
    # Only an active product has a page customers can open; a draft's link would 404.
    url = (
        f"https://{shop}/products/{product.handle}"
        if shop and product.handle and product.status in (None, "active")
        else None
    )
    return dict(
        external_id=product.id,
        title=product.title or None,
        product_type=(product.product_type or "").strip() or None,
        vendor=(product.vendor or "").strip() or None,
        handle=product.handle or None,
        tags=split_tags(product.tags),
        image_url=image,
        url=url,
        updated_at=product.updated_at,
    )


def normalise(topic: str, data: Any, *, received_at: datetime, shop: str | None) -> CanonicalEvent:
    """The ``product.updated`` / ``product.deleted`` event of a product webhook.

    ``shop`` is the X-Shopify-Shop-Domain the product's page is on. Raises InvalidPayload
    naming each wrong field.
    """
    if topic == "products/delete":
        deleted = parse_as(DeletedProduct, data)
        event: dict[str, Any] = dict(
            type=EventType.PRODUCT_DELETED,
            occurred_at=received_at,
            product=dict(external_id=deleted.id),
        )
    else:
        product = parse_as(ShopifyProduct, data)
        fields = product_fields(product, shop)
        event = dict(
            type=EventType.PRODUCT_UPDATED,
            occurred_at=product.updated_at or received_at,
            product=fields,
        )
    try:
        return CanonicalEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidPayload(problems_of(exc, "canonical event: ")) from None
