"""What the public sees of reviews: a JSON summary per product and the Google feed.

Only ``published`` reviews appear, and of the reviewer only the display name they chose: no
email, customer id, order or city. Both documents are built from one query, and served with
an ETag of their bytes so that storefront widgets and Google's fetcher can revalidate cheaply.

The Google Product Reviews feed follows schema 2.3: ``feed`` > ``version``, ``publisher``
(``name``, ``favicon``), ``reviews`` > ``review`` with, in this order, ``review_id``,
``reviewer`` > ``name``, ``review_timestamp``, ``title``, ``content``, ``review_url``,
``ratings`` > ``overall`` (min, max), ``products`` > ``product`` > ``product_ids``,
``product_name``, ``product_url``, then ``collection_method``. Google expects the full feed
each time: a review missing from it is deleted on their side, so the feed has no paging.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.reviews.models import ProductReview, ReviewStatus
from postpurchase.store.models import Order, OrderItem, Product

FEED_VERSION = "2.3"
FEED_SCHEMA = "http://www.google.com/shopping/reviews/schema/product/2.3/product_reviews.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass(frozen=True)
class PublicReview:
    id: int
    product_key: str
    product_id: str | None
    product_title: str
    product_url: str
    sku: str | None
    brand: str | None
    rating: int
    title: str
    body: str
    display_name: str
    verified_buyer: bool
    submitted_at: datetime
    source: str


def published_reviews(session: Session, *, shop_url: str) -> list[PublicReview]:
    """Every published review, oldest first, with its product's page (catalogue, else the
    order line's, else the shop's) and identifiers."""
    rows = session.execute(
        select(ProductReview, Order.source, Order.shop)
        .outerjoin(Order, Order.id == ProductReview.order_id)
        .where(ProductReview.status == ReviewStatus.PUBLISHED)
        .order_by(ProductReview.submitted_at, ProductReview.id)
    ).all()
    ids = {_product_id(r.product_key) for r, _, _ in rows} - {None}
    catalogue = {
        (p.source, p.shop, p.external_id): p
        for p in session.execute(select(Product).where(Product.external_id.in_(ids))).scalars()
    }
    lines: dict[tuple[int | None, str | None], OrderItem] = {
        (i.order_id, i.product_id): i
        for i in session.execute(
            select(OrderItem).where(
                OrderItem.order_id.in_({r.order_id for r, _, _ in rows} - {None}),
                OrderItem.product_id.in_(ids),
            )
        ).scalars()
    }
    found = []
    for review, source, shop in rows:
        product_id = _product_id(review.product_key)
        known = catalogue.get((source or review.source, shop or "", product_id or ""))
        line = lines.get((review.order_id, product_id))
        found.append(
            PublicReview(
                id=review.id,
                product_key=review.product_key,
                product_id=product_id,
                product_title=review.product_title,
                product_url=(known.url if known is not None and not known.deleted_at else None)
                or (line.product_url if line is not None else None)
                or shop_url,
                sku=line.sku if line is not None else None,
                brand=(known.vendor if known is not None else None)
                or (line.vendor if line is not None else None),
                rating=review.rating,
                title=review.title,
                body=review.body,
                display_name=review.display_name,
                verified_buyer=review.verified_buyer,
                submitted_at=review.submitted_at,
                source=review.source,
            )
        )
    return found


def _product_id(key: str) -> str | None:
    return key[3:] if key.startswith("id:") else None


def _average(ratings: list[int]) -> str:
    mean = Decimal(sum(ratings)) / Decimal(len(ratings))
    return str(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def reviews_json(reviews: list[PublicReview], *, product_id: str | None = None) -> bytes:
    """``{"products": [{product_id, title, url, review_count, average_rating, reviews}]}``,
    newest review first within a product; only ``product_id``'s when given."""
    products: dict[str, dict[str, Any]] = {}
    for review in reviews:
        if product_id is not None and review.product_id != product_id:
            continue
        entry = products.setdefault(
            review.product_key,
            {
                "product_id": review.product_id,
                "title": review.product_title,
                "url": review.product_url,
                "reviews": [],
            },
        )
        entry["reviews"].insert(
            0,
            {
                "id": review.id,
                "rating": review.rating,
                "title": review.title,
                "text": review.body,
                "name": review.display_name,
                "verified_buyer": review.verified_buyer,
                "date": review.submitted_at.date().isoformat(),
            },
        )
    listed = []
    for entry in products.values():
        ratings = [r["rating"] for r in entry["reviews"]]
        listed.append(
            {
                **{k: v for k, v in entry.items() if k != "reviews"},
                "review_count": len(ratings),
                "average_rating": _average(ratings),
                "reviews": entry["reviews"],
            }
        )
    body = {"products": listed}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def google_feed(reviews: list[PublicReview], *, shop_name: str, favicon: str | None) -> bytes:
    """The Google Product Reviews feed (schema 2.3) of ``reviews``, as UTF-8 XML."""
    ET.register_namespace("xsi", _XSI)
    feed = ET.Element("feed", {f"{{{_XSI}}}noNamespaceSchemaLocation": FEED_SCHEMA})
    ET.SubElement(feed, "version").text = FEED_VERSION
    publisher = ET.SubElement(feed, "publisher")
    ET.SubElement(publisher, "name").text = shop_name
    if favicon:
        ET.SubElement(publisher, "favicon").text = favicon
    listed = ET.SubElement(feed, "reviews")
    for review in reviews:
        # Google refuses a review without content; a stars-only review stays in the JSON.
        if not review.body.strip():
            continue
        item = ET.SubElement(listed, "review")
        ET.SubElement(item, "review_id").text = f"{review.source}-{review.id}"
        reviewer = ET.SubElement(item, "reviewer")
        ET.SubElement(reviewer, "name", {"is_anonymous": "false"}).text = review.display_name
        ET.SubElement(item, "review_timestamp").text = review.submitted_at.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        if review.title:
            ET.SubElement(item, "title").text = review.title
        ET.SubElement(item, "content").text = review.body
        # The reviews are shown on the product's page, among others: a "group" page.
        ET.SubElement(item, "review_url", {"type": "group"}).text = review.product_url
        ratings = ET.SubElement(item, "ratings")
        ET.SubElement(ratings, "overall", {"min": "1", "max": "5"}).text = str(review.rating)
        products = ET.SubElement(item, "products")
        product = ET.SubElement(products, "product")
        if review.sku or review.brand:
            ids = ET.SubElement(product, "product_ids")
            if review.sku:
                ET.SubElement(ET.SubElement(ids, "skus"), "sku").text = review.sku
            if review.brand:
                ET.SubElement(ET.SubElement(ids, "brands"), "brand").text = review.brand
        ET.SubElement(product, "product_name").text = review.product_title
        ET.SubElement(product, "product_url").text = review.product_url
        if review.verified_buyer:
            # asked after the order was fulfilled, through the order's own signed link
            ET.SubElement(item, "collection_method").text = "post_fulfillment"
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
