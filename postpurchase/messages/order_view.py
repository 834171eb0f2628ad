"""The order as templates see it: its lines with product pages, images and review links, and
the order fields a message shows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from itertools import chain
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from postpurchase.catalogue.products import CatalogueEntry
from postpurchase.messages.sandbox import keyed_view
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
    # Positional, in the fields' order: keywords would be gathered into a dict first.
    return OrderLine(
        title,
        quantity,
        unit_price,
        product_id,
        # product_title: variants share their product's title in the catalogue ("IPod Nano - 8GB")
        (known.title if known is not None else None) or title,
        known.handle if known is not None else None,  # handle
        (known.image_url if known is not None else None) or image_url,
        page or product_url,  # product_url
    )


class ReviewPage:
    """The hosted review page of one message's order (``/r/{token}``, signed for its customer
    and touchpoint), signed the first time it is asked for.

    ``links.review`` and each line's ``review_url`` (the default link template is the page
    itself) share it, and most templates show none of them: signing it for every message cost
    more than a tenth of building the context.
    """

    __slots__ = ("_customer_id", "_shop", "_touchpoint_id", "_url")

    def __init__(self, shop: ShopProfile, customer_id: int, touchpoint_id: int) -> None:
        self._shop = shop
        self._customer_id = customer_id
        self._touchpoint_id = touchpoint_id
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            claim = LinkClaim("review", self._customer_id, self._touchpoint_id)
            self._url = f"{self._shop.public_base_url}/r/{sign(self._shop.signing_key, claim)}"
        return self._url


def review_url(shop: ShopProfile, line: OrderLine, review_page: str) -> str:
    key = f"id-{line.product_id}" if line.product_id else f"title-{line.product_title}"
    return shop.review_link_template.format(
        product_url=line.product_url or shop.url,
        product_id=line.product_id or "",
        handle=line.handle or "",
        review_page=f"{review_page}#{quote(key[:255], safe='')}",
    )


@keyed_view
class OrderEntry(Mapping[str, Any]):
    """An item or product of the order view: read-only, its ``review_url`` made when first
    read (``review_url`` with the message's ``ReviewPage``), its other fields as given.

    Most templates show no review link: making one for each line of every message (quoting
    and formatting cost about as much as signing a link) and, with the default template,
    signing the review page for it, was spent for nothing. It reads as the dict it replaces
    did: same keys in the same order, equal to that dict.
    """

    __slots__ = ("_fields", "_line", "_page", "_shop")

    def __init__(
        self, fields: dict[str, Any], shop: ShopProfile, line: OrderLine, page: ReviewPage
    ) -> None:
        self._fields = fields  # every key but "review_url", until it is read
        self._shop = shop
        self._line = line
        self._page = page

    def __getitem__(self, key: str) -> Any:
        try:
            return self._fields[key]
        except KeyError:
            if key != "review_url":
                raise
        url = self._fields["review_url"] = review_url(self._shop, self._line, self._page.url)
        return url

    def __contains__(self, key: object) -> bool:
        return key in self._fields or key == "review_url"

    def __iter__(self) -> Iterator[str]:
        if "review_url" in self._fields:
            return iter(self._fields)
        return chain(self._fields, ("review_url",))

    def __len__(self) -> int:
        return len(self._fields) + ("review_url" not in self._fields)

    def __repr__(self) -> str:
        return repr(dict(self))


def products_view(
    shop: ShopProfile, lines: list[OrderLine], review_page: ReviewPage
) -> list[OrderEntry]:
    """One entry per product: the variants of a product (lines with its id, or with its
    title when the platform gave no id) are one thing to review, with the review link of its
    first line."""
    products: dict[str, tuple[dict[str, Any], OrderLine]] = {}
    for line in lines:
        key = f"id:{line.product_id}" if line.product_id else f"title:{line.product_title}"
        found = products.get(key)
        if found is None:
            products[key] = (
                {
                    "title": line.product_title,
                    "quantity": line.quantity,
                    "image_url": line.image_url,
                    "product_url": line.product_url or shop.url,
                },
                line,
            )
        else:
            entry = found[0]
            entry["quantity"] += line.quantity
            entry["image_url"] = entry["image_url"] or line.image_url
    return [OrderEntry(fields, shop, first, review_page) for fields, first in products.values()]


def build_order_view(
    shop: ShopProfile,
    *,
    name: str,
    currency: str,
    subtotal: Decimal,
    total: Decimal,
    total_tax: Decimal,
    total_shipping: Decimal,
    total_discounts: Decimal,
    placed_at: datetime | None,
    delivered_at: datetime | None,
    delivery_confirmed: bool,
    tracking_url: str | None,
    items: list[OrderLine],
    review_page: ReviewPage,
) -> dict[str, Any]:
    # One dict made at its size: the amounts merged in from a dict of their own cost a dict
    # and two resizes of this one, about 5K instructions per message (callgrind).
    return {
        "name": name,
        "currency": currency,
        "subtotal": subtotal,
        "total": total,
        "total_tax": total_tax,
        "total_shipping": total_shipping,
        "total_discounts": total_discounts,
        "placed_at": placed_at,
        "delivered_at": delivered_at,
        "delivery_confirmed": delivery_confirmed,
        "tracking_url": tracking_url,
        "items": [
            OrderEntry(
                {
                    "title": line.title,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "line_total": line.unit_price * line.quantity,
                    "image_url": line.image_url,
                    "product_url": line.product_url or shop.url,
                },
                shop,
                line,
                review_page,
            )
            for line in items
        ],
        "products": products_view(shop, items, review_page),
    }
