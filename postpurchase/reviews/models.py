"""The ``product_reviews`` table: what customers wrote about the products they bought.

One row per order and product (the variants of a product are one thing to review), written
by the hosted review page, or per (source, external id) for reviews left on Judge.me or
Yotpo. ``verified_buyer`` is true when the review came through a signed link of the order.
Only ``published`` rows are ever shown to the public, and only with ``display_name``.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from postpurchase.store.columns import BigId, str_enum
from postpurchase.store.models import Base


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"  # held for a person (or waiting for one, when auto-publish is off)
    PUBLISHED = "published"
    REJECTED = "rejected"


class ProductReview(Base):
    __tablename__ = "product_reviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))  # page, judgeme, yotpo
    external_id: Mapped[str | None] = mapped_column(String(64))  # the review service's id
    shop: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoints.id"))
    # "id:<platform product id>", or "title:<title>" for a line the platform gave no id
    product_key: Mapped[str] = mapped_column(String(255))
    product_title: Mapped[str] = mapped_column(Text)
    rating: Mapped[int]
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    display_name: Mapped[str] = mapped_column(String(64))
    verified_buyer: Mapped[bool] = mapped_column(default=False)
    status: Mapped[ReviewStatus] = mapped_column(
        str_enum(ReviewStatus, "review_status"), default=ReviewStatus.PENDING
    )
    held_because: Mapped[str | None] = mapped_column(Text)  # why moderation held it
    moderated_by: Mapped[str | None] = mapped_column(String(128))
    submitted_at: Mapped[datetime]
    edited_at: Mapped[datetime]
    moderated_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("order_id", "product_key"),
        UniqueConstraint("source", "external_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_1_to_5"),
        Index("ix_product_reviews_published", "status", "product_key"),
    )
