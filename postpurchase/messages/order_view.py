"""The order as templates see it: its lines with product pages, images and review links, and
the order fields a message shows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from postpurchase.catalogue.products import CatalogueEntry
from postpurchase.messages.tokens import LinkClaim, sign

if TYPE_CHECKING:  # context builds on this module; the profile is only a type here
    from postpurchase.messages.context import ShopProfile


class OrderLine(NamedTuple):
    """An order line with what the catalogue knows of its product (a named tuple: one is
    made for each line of each message, and a frozen dataclass costs twice as much)."""

    title: str
    quantity: int
    unit_price: Decimal
    product_id: str | None
    product_title: str
    handle: str | None
    image_url: str | None
    product_url: str | None


def order_line(
    title: str,
    quantity: int,
    unit_price: Decimal,
    product_id: str | None,
    image_url: str | None,
    product_url: str | None,
    entry: CatalogueEntry | None,
) -> OrderLine:
    known = entry if entry is not None and entry.known else None
    page = known.url if known is not None and not known.deleted else None
    return OrderLine(
        title=title,
        quantity=quantity,
        unit_price=unit_price,
        product_id=product_id,
        # variants share their product's title in the catalogue ("IPod Nano - 8GB")
        product_title=(known.title if known is not None else None) or title,
        handle=known.handle if known is not None else None,
        image_url=(known.image_url if known is not None else None) or image_url,
        product_url=page or product_url,
    )


def review_page_url(shop: ShopProfile, customer_id: int, touchpoint_id: int) -> str:
    """The hosted review page of the touchpoint's order (``/r/{token}``)."""
    token = sign(shop.signing_key, LinkClaim("review", customer_id, touchpoint_id))
    return f"{shop.public_base_url}/r/{token}"


def review_url(shop: ShopProfile, line: OrderLine, review_page: str) -> str:
    key = f"id-{line.product_id}" if line.product_id else f"title-{line.product_title}"
    return shop.review_link_template.format(
        product_url=line.product_url or shop.url,
        product_id=line.product_id or "",
        handle=line.handle or "",
        review_page=f"{review_page}#{quote(key[:255], safe='')}",
    )


def products_view(
    shop: ShopProfile, lines: list[OrderLine], review_urls: list[str]
) -> list[dict[str, Any]]:
    """One entry per product: the variants of a product (lines with its id, or with its
    title when the platform gave no id) are one thing to review. ``review_urls``: each
    line's ``review_url``, a product's the one of its first line."""
    products: dict[str, dict[str, Any]] = {}
    for line, review in zip(lines, review_urls, strict=True):
        key = f"id:{line.product_id}" if line.product_id else f"title:{line.product_title}"
        entry = products.get(key)
        if entry is None:
            products[key] = {
                "title": line.product_title,
                "quantity": line.quantity,
                "image_url": line.image_url,
                "product_url": line.product_url or shop.url,
                "review_url": review,
            }
        else:
            entry["quantity"] += line.quantity
            entry["image_url"] = entry["image_url"] or line.image_url
    return list(products.values())


def build_order_view(
    shop: ShopProfile,
    *,
    name: str,
    currency: str,
    amounts: dict[str, Decimal],
    placed_at: datetime | None,
    delivered_at: datetime | None,
    delivery_confirmed: bool,
    tracking_url: str | None,
    items: list[OrderLine],
    review_page: str,
) -> dict[str, Any]:
    # the same link for a line and for its product: made once (quoting costs)
    reviews = [review_url(shop, line, review_page) for line in items]
    return {
        "name": name,
        "currency": currency,
        **amounts,
        "placed_at": placed_at,
        "delivered_at": delivered_at,
        "delivery_confirmed": delivery_confirmed,
        "tracking_url": tracking_url,
        "items": [
            {
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "line_total": line.unit_price * line.quantity,
                "image_url": line.image_url,
                "product_url": line.product_url or shop.url,
                "review_url": review,
            }
            for line, review in zip(items, reviews, strict=True)
        ],
        "products": products_view(shop, items, reviews),
    }
