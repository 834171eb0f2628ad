"""Shopify order bodies decoded straight from the webhook's bytes: intake's fast path.

Parsing the JSON into dicts and then validating them with the pydantic models of
``shopify_models`` costs most of an order webhook's time. Here msgspec decodes the bytes
directly into these structs, reading only the fields the normaliser uses and skipping the rest
in C. Every field goes through the checks of its pydantic twin (``checked_identifier``,
``checked_aware``, the finite amounts of ``checked_money``), so what decodes here holds the
values ``ShopifyOrder`` would. Anything unusual decodes to None instead (a value the models
would coerce or refuse, a time in any but the plain RFC 3339 form, bytes that are not UTF-8):
the caller then takes the full path, whose answers and messages are the ones the sender gets.
A differential test holds the two paths to the same result.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import Meta, Struct

from postpurchase.platforms.fields import checked_aware, checked_identifier
from postpurchase.platforms.shopify_bodies import TopicMismatch, check_order_facts

# An id as the models' Identifier reads it: text checked by checked_identifier, or a JSON
# integer, as Shopify writes them. An integer of 64 bits is an id as its text (at most 20
# characters): the structs make it text with str() (_id_text), where checked_identifier's
# checks for each of an order's ids (nine or so) were a measurable share of an order
# webhook. A larger integer fails to decode, and the full path reads it.
Id = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | str


class _AnyDatetime(type):
    """Makes every ``datetime`` an instance of its classes, as ``isinstance`` sees it.

    msgspec checks that a decode hook returned an instance of the field's type. A subclass
    of datetime passed that check, but ``fromisoformat`` builds a subclass's instances by
    calling the class with each field as an argument, a parse of its arguments every time:
    about 3% of the instructions of an order webhook. The check is datetime's own, in C.
    """

    __instancecheck__ = staticmethod(datetime.__instancecheck__)


if TYPE_CHECKING:
    ShopifyTime = datetime
else:

    class ShopifyTime(metaclass=_AnyDatetime):
        """A time written as RFC 3339 with at most microseconds, as Shopify writes them: the
        form both this decoder and pydantic read the same way (they round and truncate longer
        fractions differently, and pydantic reads more forms). Only a mark for the decode
        hook, which makes it a plain ``datetime``."""


_PLAIN_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _finite(*amounts: Decimal | None) -> None:
    # msgspec makes a Decimal as checked_money does (from the string, or from the JSON
    # number's own digits); what is left of checked_money is its refusal of NaN and infinity.
    for amount in amounts:
        if amount is not None and not amount.is_finite():
            raise ValueError("must be a finite amount")


def _id_text(value: int | str) -> str:
    # A decoded integer fits 64 bits (Id), so its text is the id; text is checked as the
    # models check it.
    return str(value) if type(value) is int else checked_identifier(value)


def _decode_hook(kind: type, value: Any) -> Any:
    if kind is ShopifyTime and isinstance(value, str) and _PLAIN_TIME.fullmatch(value):
        when = datetime.fromisoformat(value)  # ValueError (a 30th of February) refuses
        # The models' range check (years 1970 to 9000 in UTC), skipped where the written year
        # settles it: an offset (always there, and under a day) moves it by a year at most.
        if not "1971" <= value[:4] <= "8999":
            checked_aware(when)
        return when
    raise ValueError("not a plain RFC 3339 time")


class MoneyAmount(Struct):
    amount: Decimal
    currency_code: str

    def __post_init__(self) -> None:
        _finite(self.amount)


class MoneySet(Struct):
    shop_money: MoneyAmount | None = None


class Consent(Struct):
    state: str | None = None
    consent_updated_at: ShopifyTime | None = None


class Address(Struct):
    country_code: str | None = None
    province_code: str | None = None
    phone: str | None = None
    address1: str | None = None
    zip: str | None = None


class NoteAttribute(Struct):
    name: str | None = None
    value: str | None = None


class Metafield(Struct):
    namespace: str | None = None
    key: str | None = None
    value: str | None = None


class Customer(Struct):
    id: Id
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: str | None = None
    email_marketing_consent: Consent | None = None
    sms_marketing_consent: Consent | None = None
    default_address: Address | None = None
    updated_at: ShopifyTime | None = None
    metafields: list[Metafield] = []

    def __post_init__(self) -> None:
        self.id = _id_text(self.id)


class LineItem(Struct):
    id: Id
    title: str
    quantity: int
    price: Decimal
    product_id: Id | None = None
    variant_id: Id | None = None
    sku: str | None = None
    vendor: str | None = None
    price_set: MoneySet | None = None

    def __post_init__(self) -> None:
        self.id = _id_text(self.id)
        _finite(self.price)
        if self.product_id is not None:
            self.product_id = _id_text(self.product_id)
        if self.variant_id is not None:
            self.variant_id = _id_text(self.variant_id)


class Fulfillment(Struct):
    tracking_url: str | None = None
    status: str | None = None


class ShippingLine(Struct):
    price: Decimal
    price_set: MoneySet | None = None

    def __post_init__(self) -> None:
        _finite(self.price)


class DiscountCodeLine(Struct):
    code: str


class Order(Struct):
    """``ShopifyOrder``'s fields, plus ``test`` (a test order). ``line_items`` is required
    here: it is what tells an order's body from other kinds (``shopify_bodies``)."""

    id: Id
    currency: str
    created_at: ShopifyTime
    total_price: Decimal
    line_items: list[LineItem]
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    updated_at: ShopifyTime | None = None
    cancelled_at: ShopifyTime | None = None
    subtotal_price: Decimal | None = None
    total_tax: Decimal | None = None
    total_discounts: Decimal | None = None
    total_price_set: MoneySet | None = None
    subtotal_price_set: MoneySet | None = None
    total_tax_set: MoneySet | None = None
    total_discounts_set: MoneySet | None = None
    total_shipping_price_set: MoneySet | None = None
    shipping_lines: list[ShippingLine] = []
    financial_status: str | None = None
    fulfillment_status: str | None = None
    customer_locale: str | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    customer: Customer | None = None
    fulfillments: list[Fulfillment] = []
    discount_codes: list[DiscountCodeLine] = []
    note_attributes: list[NoteAttribute] = []
    test: Any = None

    def __post_init__(self) -> None:
        self.id = _id_text(self.id)
        _finite(self.total_price, self.subtotal_price, self.total_tax, self.total_discounts)


_ORDER = msgspec.json.Decoder(Order, dec_hook=_decode_hook)


def decode_order(topic: str, body: bytes) -> Order | None:
    """``body``, the body of an ``orders/*`` webhook, as an order; None when the full path
    must decide: a body that is not plainly a valid order, or whose fields deny the fact
    ``topic`` states."""
    try:
        # UTF-8 checked first: msgspec does not look inside the strings it skips, where the
        # full path's parser refuses bytes that are not UTF-8. msgspec is then given the
        # bytes, not the checked text: it reads text through its UTF-8 form, which Python
        # makes anew (a copy of the whole body) for text with any character beyond ASCII,
        # as most orders have (a card's "•••• •••• •••• 4242", a customer named Inès).
        body.decode("utf-8")
        order = _ORDER.decode(body)
        check_order_facts(
            topic,
            cancelled_at=order.cancelled_at,
            financial_status=order.financial_status,
            fulfillment_status=order.fulfillment_status,
        )
    except (UnicodeDecodeError, msgspec.DecodeError, TopicMismatch):
        return None
    return order
