"""Order tables: orders with their items and refunds, and the product catalogue.

Money is ``Numeric`` with its ISO 4217 currency beside it; ``orders.refunded_amount`` is the
sum of the order's refund rows, each recorded once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from postpurchase.store.columns import BigId, Json
from postpurchase.store.models.base import Base

if TYPE_CHECKING:
    from postpurchase.store.models.customers import Customer


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    # The shop of the inbox event that created the row ("" for the engine's single default
    # shop); every look-up by platform id goes through it (see "Several shops" in README).
    shop: Mapped[str] = mapped_column(Text, server_default="", default="")
    external_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(64))  # shown to the customer, e.g. "#1001"
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    total_tax: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    total_discounts: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    total_shipping: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    refunded_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    financial_status: Mapped[str | None] = mapped_column(String(32))
    fulfillment_status: Mapped[str | None] = mapped_column(String(32))
    tracking_url: Mapped[str | None] = mapped_column(Text)
    placed_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    fulfilled_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]  # reported, or assumed by the delivery fallback
    # set only by a delivery event: None while delivery is assumed (messages say it differently)
    delivery_confirmed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    source_updated_at: Mapped[datetime | None]  # the platform's updated_at: newest wins
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    customer: Mapped[Customer | None] = relationship(back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("source", "shop", "external_id"),
        # support finds an order by its number ("#1001") or the platform's id
        Index("ix_orders_name", "name"),
        Index("ix_orders_external_id", "external_id"),
    )


class OrderRefund(Base):
    """One refund of an order, once: ``orders.refunded_amount`` is the sum of these rows."""

    __tablename__ = "order_refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))  # the platform's refund id
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    refunded_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("order_id", "external_id"),)


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(64))
    variant_id: Mapped[str | None] = mapped_column(String(64))
    sku: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(Text)
    product_type: Mapped[str | None] = mapped_column(String(255))
    vendor: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    image_url: Mapped[str | None] = mapped_column(Text)
    product_url: Mapped[str | None] = mapped_column(Text)

    order: Mapped[Order] = relationship(back_populates="items")

    __table_args__ = (
        UniqueConstraint("order_id", "external_id"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )


class Product(Base):
    """The shop's catalogue: what order lines do not say about their product (type, tags,
    collections, image, page), kept from product webhooks or looked up through the platform.

    A row whose ``source_updated_at`` is None is a product seen only in orders so far: its
    fields are empty and a look-up is due at ``lookup_after`` (see ``catalogue.lookup``).
    A deletion sets ``deleted_at`` and keeps the row, so past orders still show the product.
    """

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    # The shop of the inbox event that created the row ("" for the engine's single default
    # shop); every look-up by platform id goes through it (see "Several shops" in README).
    shop: Mapped[str] = mapped_column(Text, server_default="", default="")
    external_id: Mapped[str] = mapped_column(String(64))  # the platform's product id
    title: Mapped[str | None] = mapped_column(Text)
    product_type: Mapped[str | None] = mapped_column(String(255))
    vendor: Mapped[str | None] = mapped_column(String(255))
    handle: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[list[str]] = mapped_column(Json, default=list)
    collections: Mapped[list[str]] = mapped_column(Json, default=list)
    image_url: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None]
    source_updated_at: Mapped[datetime | None]  # the platform's updated_at: newest wins
    lookup_attempts: Mapped[int] = mapped_column(default=0)
    lookup_after: Mapped[datetime | None]  # when an unknown product may be looked up
    lookup_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        UniqueConstraint("source", "shop", "external_id"),
        # only the products still unknown: what a look-up run walks
        Index(
            "ix_products_unknown",
            "lookup_after",
            postgresql_where=text("source_updated_at IS NULL"),
            sqlite_where=text("source_updated_at IS NULL"),
        ),
    )
