"""Canonical events as processing reads them back from the inbox: msgspec structs.

Each struct mirrors a model of ``postpurchase.events`` field for field (names, order, types,
limits; ``tests/test_stored_events.py`` holds them to it). A drainer reads every payload it
claims: pydantic's reading of a Shopify order's (``STORED`` validation) took about 183,000
instructions, a third of a drainer's; msgspec's typed decoding takes 58,000, and the checks
below 60,000 more. Building the models from msgspec's output cost more than it saved, so
processing reads these structs.

What a struct holds is what the model would hold (``read_stored``): a payload msgspec reads
but pydantic would read differently or refuse goes to pydantic, whose event (converted,
``from_model``) or refusal is the answer. Told apart by what stored payloads (written by
pydantic: stripped, lower-cased, at most microseconds) always are: an email address in ASCII
lower case (a limit of the struct: pydantic lower-cases one), no fraction of a second beyond
microseconds (the payload scanned: msgspec rounds it, pydantic truncates), text without
surrounding whitespace (pydantic strips it) and amounts within the columns' limits (msgspec
takes "NaN"), both checked once decoded (``_as_pydantic_reads``); the texts from the payload's
bytes when it is compact, as intake writes it and the inbox keeps it.

"Given" (the payload carried it, if only as null) is told as the models'
``model_fields_set`` tells it, where processing asks: a field is ``UNSET`` when absent if
its default is not None (an amount's 0, a list's []), and for every field of a customer
(``processing.consents.consent_only``) and of a product (an explicit null clears a
product's field); an order's other fields, whose default is None, are given when not None.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import msgspec.inspect
from msgspec import UNSET, Meta, Struct, UnsetType
from pydantic import BaseModel

from postpurchase.event_structs import stripped
from postpurchase.events import STORED, CanonicalEvent, EventType, plain_amount

Text16 = Annotated[str, Meta(max_length=16)]
Text32 = Annotated[str, Meta(max_length=32)]
Text64 = Annotated[str, Meta(max_length=64)]
Text128 = Annotated[str, Meta(max_length=128)]
Text255 = Annotated[str, Meta(max_length=255)]
Title = Annotated[str, Meta(min_length=1)]
Id = Annotated[str, Meta(min_length=1, max_length=64)]
Quantity = Annotated[int, Meta(ge=0, le=2**31 - 1)]
Rating = Annotated[int, Meta(ge=1, le=5)]
Currency = Annotated[str, Meta(pattern=r"\A[A-Z]{3}\Z")]
DiscountCodes = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=255)]],
    Meta(max_length=100),
]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
# The stored check's shape (``events._PLAIN_ADDRESS``) in ASCII without capitals, which
# pydantic's lower-casing leaves as it is; any other address goes to pydantic.
Email = Annotated[str, Meta(max_length=320, pattern=r"\A[!-?\[-~]+@[!-?\[-~]+\Z")]


class _Struct(Struct, frozen=True, forbid_unknown_fields=True):
    pass


class StoredCustomer(_Struct, frozen=True, kw_only=True):
    external_id: Id
    email: Email | None | UnsetType = UNSET
    phone: Text32 | None | UnsetType = UNSET
    first_name: Text255 | None | UnsetType = UNSET
    last_name: Text255 | None | UnsetType = UNSET
    locale: Text16 | None | UnsetType = UNSET
    time_zone: Text64 | None | UnsetType = UNSET
    email_marketing_consent: bool | None = None
    email_marketing_consent_at: AwareDatetime | None = None
    sms_consent: bool | None = None
    sms_consent_at: AwareDatetime | None = None
    sms_marketing_consent: bool | None = None
    sms_marketing_consent_at: AwareDatetime | None = None
    tags: list[str] | UnsetType = UNSET
    updated_at: AwareDatetime | None | UnsetType = UNSET
    birthday: date | None | UnsetType = UNSET


class StoredLine(_Struct, frozen=True, kw_only=True):
    external_id: Id
    product_id: Id | None = None
    variant_id: Id | None = None
    sku: Text128 | None = None
    title: Title
    product_type: Text255 | None = None
    vendor: Text255 | None = None
    quantity: Quantity
    unit_price: Decimal
    image_url: str | None = None
    product_url: str | None = None


class StoredRefund(_Struct, frozen=True, kw_only=True):
    external_id: Id
    amount: Decimal
    currency: Currency
    reason: Text255 | None = None


class StoredOrder(_Struct, frozen=True, kw_only=True):
    external_id: Id
    name: Text64 | None = None
    currency: Currency
    subtotal: Decimal | UnsetType = UNSET
    total: Decimal | UnsetType = UNSET
    total_tax: Decimal | UnsetType = UNSET
    total_discounts: Decimal | UnsetType = UNSET
    total_shipping: Decimal | UnsetType = UNSET
    financial_status: Text32 | None = None
    fulfillment_status: Text32 | None = None
    tracking_url: str | None = None
    placed_at: AwareDatetime | None = None
    paid_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    lines: list[StoredLine] = msgspec.field(default_factory=list)
    customer: StoredCustomer | None = None
    refunds: list[StoredRefund] = msgspec.field(default_factory=list)
    discount_codes: DiscountCodes = msgspec.field(default_factory=list)
    referral_code: Text64 | None = None
    shipping_address_key: Text64 | None = None


class StoredShipment(_Struct, frozen=True, kw_only=True):
    status: str
    tracking_url: str | None = None


class StoredReview(_Struct, frozen=True, kw_only=True):
    rating: Rating | None = None
    product_id: Id | None = None


class StoredTierChange(_Struct, frozen=True, kw_only=True):
    from_tier: Text64 | None
    to_tier: Text64


class StoredProduct(_Struct, frozen=True, kw_only=True):
    external_id: Id
    title: str | None | UnsetType = UNSET
    product_type: Text255 | None | UnsetType = UNSET
    vendor: Text255 | None | UnsetType = UNSET
    handle: Text255 | None | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    collections: list[str] | UnsetType = UNSET
    image_url: str | None | UnsetType = UNSET
    url: str | None | UnsetType = UNSET
    updated_at: AwareDatetime | None = None


class StoredEvent(_Struct, frozen=True, kw_only=True):
    type: EventType
    occurred_at: AwareDatetime
    order: StoredOrder | None = None
    customer: StoredCustomer | None = None
    refund: StoredRefund | None = None
    shipment: StoredShipment | None = None
    review: StoredReview | None = None
    tier: StoredTierChange | None = None
    product: StoredProduct | None = None


# The structs of the models, by model name: how ``from_model`` converts a model.
STRUCTS: dict[str, type[_Struct]] = {
    "CustomerSnapshot": StoredCustomer,
    "OrderLine": StoredLine,
    "Refund": StoredRefund,
    "OrderSnapshot": StoredOrder,
    "Shipment": StoredShipment,
    "Review": StoredReview,
    "TierChange": StoredTierChange,
    "ProductSnapshot": StoredProduct,
    "CanonicalEvent": StoredEvent,
}

_DECODE = msgspec.json.Decoder(StoredEvent).decode
# A fraction of a second beyond microseconds, or text that merely looks like one: pydantic's.
_FINE_FRACTION = re.compile(rb"\.[0-9]{7}")
_STORED = {STORED: True}
# The model's own validator, called directly: all ``model_validate_json`` does besides is
# check its keyword arguments.
_VALIDATE_JSON = CanonicalEvent.__pydantic_validator__.validate_json


def read_stored(payload: bytes) -> StoredEvent:
    """The inbox payload ``payload`` (JSON) as a struct: what ``STORED`` validation of the
    model reads, or its ValidationError."""
    if _FINE_FRACTION.search(payload) is None:
        try:
            event = _DECODE(payload)
        except msgspec.DecodeError:  # refused, or not JSON: pydantic says why
            pass
        else:
            if _as_pydantic_reads(event, payload):
                return event
    return event_of(_VALIDATE_JSON(payload, context=_STORED))


def _text_fields(struct: type[_Struct]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of ``struct``'s text fields (optional ones too), as a tuple."""
    names = [
        field.name
        for field in msgspec.inspect.type_info(struct).fields  # type: ignore[attr-defined]
        if any(
            isinstance(kind, msgspec.inspect.StrType)
            for kind in getattr(field.type, "types", (field.type,))
        )
    ]
    # attrgetter of one name gives the value itself: named twice, a tuple of two
    return operator.attrgetter(*names, *names[: 2 - len(names)])


_CUSTOMER_TEXTS = _text_fields(StoredCustomer)
_LINE_TEXTS = _text_fields(StoredLine)
_REFUND_TEXTS = _text_fields(StoredRefund)
_ORDER_TEXTS = _text_fields(StoredOrder)
_SHIPMENT_TEXTS = _text_fields(StoredShipment)
_REVIEW_TEXTS = _text_fields(StoredReview)
_TIER_TEXTS = _text_fields(StoredTierChange)
_PRODUCT_TEXTS = _text_fields(StoredProduct)
_CENTS = Decimal("0.01")
_TOP = Decimal(10**11)


def _as_pydantic_reads(event: StoredEvent, payload: bytes) -> bool:
    """Whether pydantic would read ``payload``, decoded as ``event``, as msgspec did: no text
    starts or ends with whitespace (``str.strip``'s: a few characters more than pydantic
    strips, which then go to pydantic, which keeps them), and every amount passes the
    models' limits as it is.

    The texts are told from the payload's bytes when it is compact JSON, as intake writes it
    (``event_structs.stripped``: a few searches in C); otherwise, or when those cannot tell,
    from the struct's texts (``_texts_stripped``).
    """
    if not (stripped(payload) or _texts_stripped(event)):
        return False
    signed: list[Any] = []
    unsigned: list[Any] = []
    order = event.order
    if order is not None:
        signed += (
            order.subtotal,
            order.total,
            order.total_tax,
            order.total_discounts,
            order.total_shipping,
        )
        unsigned += [line.unit_price for line in order.lines]
        unsigned += [refund.amount for refund in order.refunds]
    if event.refund is not None:
        unsigned.append(event.refund.amount)
    signed = [amount for amount in signed if amount is not UNSET]
    amounts = signed + unsigned
    if not amounts:
        return True
    if all(map(_CENTS.same_quantum, amounts)):
        # cents (most amounts): finite, two places; then only their size and sign to check
        return (
            -_TOP < min(amounts)
            and max(amounts) < _TOP
            and (not unsigned or min(unsigned) >= 0)  # -0.00 too, which pydantic keeps
        )
    return all(plain_amount(amount, False) for amount in signed) and all(
        plain_amount(amount, True) for amount in unsigned
    )


def _texts_stripped(event: StoredEvent) -> bool:
    """Whether no text of ``event`` starts or ends with whitespace. One walk, written out
    (one driven by the structs' fields cost nearly as much as the decoding), over what the
    structs hold: ``tests/test_stored_events.py`` pads every text of generated events."""
    texts: list[Any] = []
    order = event.order
    if order is not None:
        texts += _ORDER_TEXTS(order)
        texts += order.discount_codes
        for line in order.lines:
            texts += _LINE_TEXTS(line)
        for refund in order.refunds:
            texts += _REFUND_TEXTS(refund)
        if order.customer is not None:
            texts += _CUSTOMER_TEXTS(order.customer)
            texts += order.customer.tags or ()  # UNSET is false
    if event.customer is not None:
        texts += _CUSTOMER_TEXTS(event.customer)
        texts += event.customer.tags or ()
    if event.refund is not None:
        texts += _REFUND_TEXTS(event.refund)
    if event.shipment is not None:
        texts += _SHIPMENT_TEXTS(event.shipment)
    if event.review is not None:
        texts += _REVIEW_TEXTS(event.review)
    if event.tier is not None:
        texts += _TIER_TEXTS(event.tier)
    if event.product is not None:
        texts += _PRODUCT_TEXTS(event.product)
        texts += event.product.tags or ()
        texts += event.product.collections or ()
    texts = list(filter(None, texts))  # None and UNSET are false, and so is ""
    return list(map(str.strip, texts)) == texts  # strip gives back unchanged text itself


def from_model(model: BaseModel) -> Any:
    """``model`` (a ``CanonicalEvent`` or a model in one) as its struct: the fields it was
    given, unvalidated (the model was)."""
    struct = STRUCTS[type(model).__name__]
    values = model.__dict__
    return struct(**{name: _converted(values[name]) for name in model.model_fields_set})


def _converted(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return from_model(value)
    if isinstance(value, list):
        return [_converted(item) for item in value]
    return value


def event_of(model: CanonicalEvent) -> StoredEvent:
    """``model`` as processing reads it (``from_model``)."""
    event: StoredEvent = from_model(model)
    return event
