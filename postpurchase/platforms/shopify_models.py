"""Shopify's webhook bodies as validated models: orders, customers, refunds, fulfillment
events, returns and consent updates, with the fields the normaliser reads."""

from __future__ import annotations

from pydantic import Field

from postpurchase.platforms.fields import (
    Identifier,
    Money,
    PlatformModel,
    Timestamp,
)


class MoneyAmount(PlatformModel):
    amount: Money
    currency_code: str


class MoneySet(PlatformModel):
    shop_money: MoneyAmount | None = None


class Consent(PlatformModel):
    state: str | None = None
    consent_updated_at: Timestamp | None = None


class EmailConsentUpdate(PlatformModel):
    """``customers_email_marketing_consent/update``."""

    customer_id: Identifier
    email_address: str | None = None
    email_marketing_consent: Consent | None = None


class SmsConsentUpdate(PlatformModel):
    """``customers_marketing_consent/update`` (SMS, despite its name)."""

    id: Identifier
    phone: str | None = None
    sms_marketing_consent: Consent | None = None


class Address(PlatformModel):
    country_code: str | None = None
    province_code: str | None = None
    phone: str | None = None
    address1: str | None = None
    zip: str | None = None


class NoteAttribute(PlatformModel):
    name: str | None = None
    value: str | None = None


class Metafield(PlatformModel):
    namespace: str | None = None
    key: str | None = None
    value: str | None = None


class ShopifyCustomer(PlatformModel):
    id: Identifier
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: str | None = None  # comma separated
    email_marketing_consent: Consent | None = None
    sms_marketing_consent: Consent | None = None
    default_address: Address | None = None
    updated_at: Timestamp | None = None
    # Present when the webhook subscription asks for the namespace (metafieldNamespaces).
    metafields: list[Metafield] = Field(default_factory=list)


class LineItem(PlatformModel):
    id: Identifier
    product_id: Identifier | None = None
    variant_id: Identifier | None = None
    sku: str | None = None
    title: str
    vendor: str | None = None
    quantity: int
    price: Money
    price_set: MoneySet | None = None


class Fulfillment(PlatformModel):
    tracking_url: str | None = None
    status: str | None = None


class ShippingLine(PlatformModel):
    price: Money
    price_set: MoneySet | None = None


class DiscountCodeLine(PlatformModel):
    code: str


# The cart attribute a storefront sets from a referral link (?ref=CODE).
REFERRAL_ATTRIBUTE = "referral_code"


class ShopifyOrder(PlatformModel):
    id: Identifier
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    currency: str  # checked by the canonical model: three capital letters
    created_at: Timestamp
    updated_at: Timestamp | None = None
    cancelled_at: Timestamp | None = None
    total_price: Money
    subtotal_price: Money | None = None
    total_tax: Money | None = None
    total_discounts: Money | None = None
    total_price_set: MoneySet | None = None
    subtotal_price_set: MoneySet | None = None
    total_tax_set: MoneySet | None = None
    total_discounts_set: MoneySet | None = None
    total_shipping_price_set: MoneySet | None = None
    shipping_lines: list[ShippingLine] = Field(default_factory=list)
    financial_status: str | None = None
    fulfillment_status: str | None = None
    customer_locale: str | None = None
    line_items: list[LineItem] = Field(default_factory=list)
    shipping_address: Address | None = None
    billing_address: Address | None = None
    customer: ShopifyCustomer | None = None
    fulfillments: list[Fulfillment] = Field(default_factory=list)
    discount_codes: list[DiscountCodeLine] = Field(default_factory=list)
    note_attributes: list[NoteAttribute] = Field(default_factory=list)  # cart attributes


class Transaction(PlatformModel):
    kind: str | None = None
    status: str | None = None
    amount: Money
    currency: str | None = None


class RefundLine(PlatformModel):
    subtotal_set: MoneySet | None = None


class ShopifyRefund(PlatformModel):
    id: Identifier
    order_id: Identifier
    created_at: Timestamp
    transactions: list[Transaction] = Field(default_factory=list)
    refund_line_items: list[RefundLine] = Field(default_factory=list)


class FulfillmentEvent(PlatformModel):
    id: Identifier
    order_id: Identifier
    status: str = Field(min_length=1, max_length=64)
    happened_at: Timestamp | None = None
    created_at: Timestamp | None = None


class OrderReference(PlatformModel):
    id: Identifier


class ReturnRequest(PlatformModel):
    id: Identifier
    order: OrderReference
