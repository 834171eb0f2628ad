"""Canonical events: the one shape every platform's webhook is normalised into.

The inbox stores ``CanonicalEvent.model_dump(mode="json")`` as its payload, so everything after
intake (planning, loyalty, segments) reads one format whatever the platform. Money is Decimal
(serialised as a string), times are timezone-aware. The generic webhook route accepts this
shape directly.
"""

from __future__ import annotations

import enum
import hashlib
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal
from functools import cache, lru_cache
from typing import Annotated, Any, cast

import msgspec
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticKnownError, TzInfo
from pydantic_core.core_schema import ErrorType


class EventType(enum.StrEnum):
    ORDER_PLACED = "order.placed"
    ORDER_PAID = "order.paid"
    ORDER_UPDATED = "order.updated"  # state refresh with no step of the journey of its own
    ORDER_FULFILLED = "order.fulfilled"
    ORDER_PARTIALLY_FULFILLED = "order.partially_fulfilled"
    SHIPMENT_UPDATED = "shipment.updated"  # out for delivery, attempted, failure, in transit
    ORDER_DELIVERED = "order.delivered"
    ORDER_REFUNDED = "order.refunded"
    ORDER_CANCELLED = "order.cancelled"
    RETURN_REQUESTED = "return.requested"
    REVIEW_SUBMITTED = "review.submitted"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_CREATED = "customer.created"  # an account opened (loyalty: sign-up points)
    TIER_CHANGED = "tier.changed"  # emitted by segment refreshes, not by platforms
    # emitted when a customer answers NPS 0-6, CSAT 1-2 or gives 1-2 stars, not by platforms
    FEEDBACK_NEGATIVE = "feedback.negative"
    # The shop's catalogue: no journey of their own, they update the products table.
    PRODUCT_UPDATED = "product.updated"  # created, updated or restored
    PRODUCT_DELETED = "product.deleted"


# Validation context of payloads read back from the inbox (``{STORED: True}``): they were
# validated in full when stored, so checks that only guard the way in are lighter.
STORED = "stored"
_PLAIN_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+")


def _aware(value: datetime) -> datetime:
    """``value``, refused without an offset; a time pydantic read from text with its offset
    in the standard library's zone instead of pydantic's own (the same offset and clock)."""
    zone = value.tzinfo
    if zone is None:
        raise ValueError("must include a time zone offset, e.g. 2026-11-27T10:00:00Z")
    if type(zone) is TzInfo:
        # combined from its parts: a third of what ``replace(tzinfo=...)`` costs
        return datetime.combine(value.date(), value.time(), _standard_zone(zone.utcoffset(None)))
    return value


@cache
def _standard_zone(offset: timedelta) -> timezone:
    """The ``datetime.timezone`` of ``offset`` (``datetime.UTC`` for none), one object per
    offset.

    pydantic's own zone answers (``utcoffset``, ``fromutc``) through Python method calls, and
    is made anew for each time read with an offset other than Z: comparing, subtracting,
    converting (planning's due times) and encoding (msgspec, psycopg) such times cost more
    than in the standard library's zone, which answers in C, and two times of one zone
    object compare without asking it at all. Cached by the offset, not by pydantic's zone,
    whose hash and comparison cost twice as much as asking it for its offset: whole minutes
    under a day, a few thousand at most.
    """
    return timezone(offset)


def _fits_money_column(value: Decimal) -> Decimal:
    # Money columns are Numeric(18, 4), which SQLite keeps as a 64-bit float: exact to 15
    # significant digits. Four places after the point leave eleven before it (a hundred
    # billion, in any currency), which both databases store and give back unchanged.
    if value.is_finite() and value.adjusted() >= 11:
        raise ValueError("must be less than 10^11")
    return value


_CENTS = Decimal("0.01")
_FOUR_PLACES = Decimal("0.0001")
# quantize's own context: which amounts take the short way must not hang on the caller's
_QUANTIZING = Context(prec=28)


def plain_amount(value: Decimal, non_negative: bool, /) -> bool:
    """Whether ``value``, any Decimal, passes every limit of an amount (``_money_check``) as it
    is: finite, at most four places, under 10^11, and not signed if ``non_negative``."""
    return (
        value.is_finite()
        and value.adjusted() < 11
        and not (non_negative and value.is_signed())  # -0, which passes, the long way
        # rounding passed by position: as keywords they cost this call twice as much
        and (value.same_quantum(_CENTS) or value.quantize(_FOUR_PLACES, None, _QUANTIZING) == value)
    )


def _money_check(*, non_negative: bool = False) -> AfterValidator:
    """The check of an amount for a Numeric(18, 4) column, once pydantic made it a finite
    Decimal: pydantic's limits of digits (then ``ge=0`` if ``non_negative``), then the
    column's range, each refusing as it did when they were the field's own constraints.

    pydantic's digit check normalises each amount and reads its digits as a tuple: about a
    sixth of the cost of validating an event, each one stored and each one read back. An
    amount of at most four places under 10^11 (and not signed, if ``non_negative``) passes
    every limit, which a few cheap calls tell (``plain_amount``, cents first). Any other
    amount is checked by pydantic itself, its refusal raised as it is: the same type,
    message and context, with this field's input and place.
    """
    limits = TypeAdapter(
        Annotated[Decimal, Field(max_digits=18, decimal_places=4, ge=0 if non_negative else None)]
    )

    def check(value: Decimal) -> Decimal:
        if plain_amount(value, non_negative):
            return value
        try:
            limits.validate_python(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise PydanticKnownError(cast(ErrorType, error["type"]), error.get("ctx")) from None
        return _fits_money_column(value)

    return AfterValidator(check)


def normalised_email(raw: str) -> str:
    """``raw`` as an address mail can go to, normalised and lower-cased (no DNS look-up).

    Raises EmailNotValidError. Cached: one webhook names the same address several times (the
    order's and the customer's, then the canonical event's check of what the normaliser
    kept), in the case the shopper typed it and then lower-cased. Failures are not cached.

    Most addresses are plain ASCII: a dot-atom before the @-sign, a host name after it. For
    them email-validator's verdict and normal form depend on the part after the @-sign alone
    (the dot-atom comes back as it is), besides the total length: the domain is checked once
    (``_plain_domain``) and the rest decided here, a fraction of the cost of a full check,
    which every order paid since each names a customer of its own. Anything else, or a
    domain the check refuses, goes to email-validator whole, for its verdict and message.
    """
    if raw.isascii():
        # Looked up lower-cased: the shortcut's verdict and result do not depend on the case
        # of ASCII letters (its patterns take both cases, email-validator lower-cases the
        # domain before any other check of it, lengths do not change), so "C0@example.com"
        # and the "c0@example.com" it becomes are one entry. Non-ASCII text is not: some
        # characters lower-case to ASCII ones (the Kelvin sign to "k").
        plain = _plain_address(raw.lower())
        if plain is not None:
            return plain
    return _validated_address(raw)


@lru_cache(maxsize=4096)
def _plain_address(address: str) -> str | None:
    """``address`` (ASCII, lower-cased) normalised by the shortcut, or None if it is not a
    plain address or its domain is refused: email-validator decides those."""
    plain = _ONE_AT_SIGN.fullmatch(address)
    if plain is not None and DOT_ATOM_TEXT.match(local := plain[1]):
        domain = _plain_domain(given := plain[2])
        if domain is not None:
            normal, ascii = domain
            # email-validator checks the length as given, normalised, and with ASCII domain
            if len(local) + 1 + max(len(given), len(normal), len(ascii)) <= EMAIL_MAX_LENGTH:
                return f"{local}@{normal}".lower()
    return None


@lru_cache(maxsize=1024)
def _validated_address(raw: str) -> str:
    """``raw`` normalised by email-validator (EmailNotValidError, not cached, if refused)."""
    return validate_email(raw, check_deliverability=False).normalized.lower()


# The local part is plain if it is an ASCII dot-atom (email-validator's own pattern): no
# quotes, angle brackets or spaces, so no quoted local part nor display name either.
_ONE_AT_SIGN = re.compile(r"([^@]+)@([0-9A-Za-z.-]+)")


@lru_cache(maxsize=1024)
def _plain_domain(domain: str) -> tuple[str, str] | None:
    """(normal form, ASCII form) of ``domain`` after the @-sign, or None if refused."""
    try:
        checked = validate_email(f"x@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Money = Annotated[Decimal, _money_check()]
NonNegativeMoney = Annotated[Decimal, _money_check(non_negative=True)]
# The limits of the columns each value is stored in (postpurchase.store.models), so that what
# intake accepts, processing can store: a value over them is a 422 naming the field, never an
# accepted webhook that fails later.
Id = Annotated[str, Field(min_length=1, max_length=64)]
Quantity = Annotated[int, Field(ge=0, le=2**31 - 1)]  # Integer column
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
DiscountCode = Annotated[str, Field(min_length=1, max_length=255)]
# ISO 4217's "no currency": an event about an order that does not say the order's currency
# (a fulfillment event, a return). It never overwrites a known currency.
NO_CURRENCY = "XXX"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CustomerSnapshot(_Model):
    external_id: Id
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)  # E.164 once normalised
    first_name: str | None = Field(default=None, max_length=255)
    last_name: str | None = Field(default=None, max_length=255)
    locale: str | None = Field(default=None, max_length=16)
    time_zone: str | None = Field(default=None, max_length=64)
    # True: granted, False: denied, None: the platform said nothing (a stored answer is kept).
    # ``*_at``: when the customer gave that answer, if the platform says (Shopify's
    # ``consent_updated_at``); it orders competing answers (``postpurchase.consent``).
    email_marketing_consent: bool | None = None
    email_marketing_consent_at: AwareDatetime | None = None
    sms_consent: bool | None = None
    sms_consent_at: AwareDatetime | None = None
    sms_marketing_consent: bool | None = None
    sms_marketing_consent_at: AwareDatetime | None = None
    tags: list[str] = Field(default_factory=list)
    updated_at: AwareDatetime | None = None
    # Loyalty birthday points (Shopify: the customer metafield facts.birth_date).
    birthday: date | None = None

    @field_validator("email")
    @classmethod
    def _usable_email(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Messages go to this address: a CRLF or a malformed address must never be stored.
        # (Platform normalisers drop an unusable address before it gets here, with a note.)
        if not value:
            return None
        if info.context is not None and info.context.get(STORED):
            # Read back from the inbox, where only validated events are stored: the full
            # check (most of the cost of parsing an event) was done then; a shape check stays.
            if not _PLAIN_ADDRESS.fullmatch(value):
                raise ValueError("is not a usable email address")
            return value.lower()
        try:
            normalised_email(value)
        except EmailNotValidError as exc:
            raise ValueError(f"is not a usable email address: {exc}") from None
        return value.lower()


class OrderLine(_Model):
    external_id: Id
    product_id: Id | None = None
    variant_id: Id | None = None
    sku: str | None = Field(default=None, max_length=128)
    title: str = Field(min_length=1)
    product_type: str | None = Field(default=None, max_length=255)
    vendor: str | None = Field(default=None, max_length=255)
    quantity: Quantity
    unit_price: NonNegativeMoney
    image_url: str | None = None
    product_url: str | None = None


class Refund(_Model):
    """Money paid back, once per platform refund id."""

    external_id: Id
    amount: NonNegativeMoney
    currency: Currency
    reason: str | None = Field(default=None, max_length=255)


class OrderSnapshot(_Model):
    """The order as the platform last described it; ``updated_at`` orders competing updates."""

    external_id: Id
    name: str | None = Field(default=None, max_length=64)
    currency: Currency
    subtotal: Money = Decimal("0")
    total: Money = Decimal("0")
    total_tax: Money = Decimal("0")
    total_discounts: Money = Decimal("0")
    total_shipping: Money = Decimal("0")
    financial_status: str | None = Field(default=None, max_length=32)
    fulfillment_status: str | None = Field(default=None, max_length=32)
    tracking_url: str | None = None
    placed_at: AwareDatetime | None = None
    # When the platform says payment happened (WooCommerce's date_paid_gmt); a paid status
    # without it counts as paid from the event's time.
    paid_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    lines: list[OrderLine] = Field(default_factory=list)
    customer: CustomerSnapshot | None = None
    # Every refund the platform lists for the order (WooCommerce sends them all with each
    # update). Refunds are facts, not state: each counts once by its id, however stale the
    # snapshot that lists it.
    refunds: list[Refund] = Field(default_factory=list)
    # Discount codes entered at checkout (Shopify discount_codes, WooCommerce coupon_lines):
    # a loyalty reward's code here marks that redemption used (postpurchase.rewards).
    discount_codes: list[DiscountCode] = Field(default_factory=list, max_length=100)
    # A referral code the order came with (a cart attribute, order meta, or the generic field).
    referral_code: str | None = Field(default=None, max_length=64)
    # A one-way digest of the shipping address (address_key()): referral checks compare
    # addresses without keeping them.
    shipping_address_key: str | None = Field(default=None, max_length=64)

    @property
    def refunded_amount(self) -> Decimal:
        """What the listed refunds add up to (read like the stored order's column)."""
        return sum((refund.amount for refund in self.refunds), Decimal(0))


class Shipment(_Model):
    status: str  # delivered, out_for_delivery, attempted_delivery, in_transit, failure, ...
    tracking_url: str | None = None


class Review(_Model):
    rating: int | None = Field(default=None, ge=1, le=5)
    product_id: Id | None = None


class TierChange(_Model):
    from_tier: str | None = Field(max_length=64)
    to_tier: str = Field(max_length=64)


class ProductSnapshot(_Model):
    """A product as the platform last described it (``product.*`` events); lists hold what
    the platform sent, in its order. A deletion carries only the id."""

    external_id: str = Field(min_length=1, max_length=64)
    title: str | None = None
    product_type: str | None = Field(default=None, max_length=255)
    vendor: str | None = Field(default=None, max_length=255)
    handle: str | None = Field(default=None, max_length=255)
    tags: list[str] = Field(default_factory=list)
    collections: list[str] = Field(default_factory=list)
    image_url: str | None = None
    url: str | None = None
    updated_at: AwareDatetime | None = None


class CanonicalEvent(_Model):
    """One thing that happened. ``order`` is present for every ``order.*``/``return.*`` event."""

    type: EventType
    occurred_at: AwareDatetime
    order: OrderSnapshot | None = None
    customer: CustomerSnapshot | None = None
    refund: Refund | None = None
    shipment: Shipment | None = None
    review: Review | None = None
    tier: TierChange | None = None
    product: ProductSnapshot | None = None

    def subject_id(self) -> str | None:
        """The platform id the event is about (order, else customer, else product), for the
        inbox row."""
        return event_subject_id(self)

    def times(self) -> list[tuple[str, datetime]]:
        """Every time the event carries, with its path (``order.updated_at``)."""
        return event_times(self)

    def as_payload(self) -> dict[str, Any]:
        """The inbox payload. Only what the platform said is kept: a field it left out must
        stay out, so that processing can tell "absent" (keep the stored value) from an
        explicit value such as a total of 0."""
        return self.model_dump(mode="json", exclude_none=True, exclude_unset=True)

    def payload_json(self) -> bytes:
        """``as_payload()`` as UTF-8 JSON: the bytes pydantic's serializer writes with
        ``exclude_none=True, exclude_unset=True`` (the intake's hot path stores them as they
        are), written by msgspec (``_payload_of``). pydantic's took about a tenth of an order
        webhook's instructions; this takes 62% of that (``tests/test_event_payload_json.py``
        holds the two to the same bytes)."""
        return _PAYLOAD_ENCODER.encode(self)


class _PayloadShape:
    """How ``payload_json`` writes the models of one class: as msgspec structs of their fields,
    in the model's order, each field typed ``Any`` (its value written as it is) and left out
    when None (``omit_defaults``), as pydantic's ``exclude_none`` leaves it out.

    pydantic also leaves out the fields not set (``exclude_unset``). Those whose default is
    None are left out already; the others (an amount's 0, a list's []) each make a struct
    without them, one per combination met: a few, normalisers setting the same fields each
    time (at most 2^8, for an order's eight such fields). Made as they are first needed, from
    any thread: two made at once for one combination are the same struct.
    """

    def __init__(self, model: type[BaseModel]) -> None:
        self._names = tuple(model.model_fields)
        self._name = f"{model.__name__}Payload"
        self._not_none = frozenset(
            name
            for name, field in model.model_fields.items()
            if not field.is_required()
            and (field.default_factory is not None or field.default is not None)
        )
        self._structs: dict[frozenset[str], type[msgspec.Struct]] = {}
        self._every_field = self._struct(frozenset())

    def _struct(self, left_out: frozenset[str]) -> type[msgspec.Struct]:
        fields = [(name, Any, None) for name in self._names if name not in left_out]
        return msgspec.defstruct(self._name, fields, omit_defaults=True)

    def struct_for(self, given: set[str]) -> type[msgspec.Struct]:
        """The struct of a model whose set fields are ``given``."""
        if not self._not_none:
            return self._every_field
        left_out = self._not_none - given
        struct = self._structs.get(left_out)
        if struct is None:
            struct = self._structs[left_out] = self._struct(left_out)
        return struct


_PAYLOAD_SHAPES: dict[type[BaseModel], _PayloadShape] = {}


def _payload_of(model: Any) -> msgspec.Struct:
    """``model``, a canonical model inside an event, as ``payload_json`` writes it (called by
    msgspec for each one it meets: the nested ones are values of the struct made here).

    Converted from its ``__dict__`` in C: leaving fields out with a comprehension or with
    ``map`` cost about as much as pydantic's writing itself. msgspec writes the values the
    models hold (text, Decimal, aware datetime, date, int, bool, the event type, lists) as
    pydantic's JSON mode does, a NUL as an escape too (``webhooks.intake._event_json_escapes``
    relies on it).
    """
    kind = type(model)
    shape = _PAYLOAD_SHAPES.get(kind)
    if shape is None:
        if not issubclass(kind, _Model):
            raise TypeError(f"{kind.__name__} is not part of a canonical event")
        shape = _PAYLOAD_SHAPES[kind] = _PayloadShape(kind)
    return msgspec.convert(model.__dict__, shape.struct_for(model.__pydantic_fields_set__))


_PAYLOAD_ENCODER = msgspec.json.Encoder(enc_hook=_payload_of)


def event_subject_id(event: Any) -> str | None:
    """``CanonicalEvent.subject_id`` of ``event``, the model or its struct (``event_structs``)."""
    if event.order is not None:
        return cast(str, event.order.external_id)
    if event.customer is not None:
        return cast(str, event.customer.external_id)
    if event.product is not None:
        return cast(str, event.product.external_id)
    return None


def event_times(event: Any) -> list[tuple[str, datetime]]:
    """``CanonicalEvent.times`` of ``event``, the model or its struct (``event_structs``)."""
    found: list[tuple[str, datetime]] = [("occurred_at", event.occurred_at)]
    order = event.order
    parts: list[tuple[str, Any]] = [
        ("order", order),
        ("order.customer", order.customer if order else None),
        ("customer", event.customer),
    ]
    for prefix, part in parts:
        if part is None:
            continue
        kind: Any = type(part)
        for name in _time_fields(kind):
            value = getattr(part, name)
            if isinstance(value, datetime):
                found.append((f"{prefix}.{name}", value))
    return found


@cache
def _time_fields(kind: Any) -> tuple[str, ...]:
    """The names among ``times()``'s that ``kind`` (a model, or its struct) has, once per
    class: asking a model for a name it lacks costs pydantic an exception, and reading
    ``model_fields`` costs a call each time, for every webhook."""
    names: Any = kind.__struct_fields__ if issubclass(kind, msgspec.Struct) else kind.model_fields
    return tuple(
        name for name in ("placed_at", "paid_at", "updated_at", "cancelled_at") if name in names
    )


_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]+")
# What the pattern removes from ASCII text, as bytes: bytes.translate removes them for a
# fraction of the cost of the pattern's substitution, for each part of every order's address.
_ASCII_NOT_ALPHANUMERIC = bytes(c for c in range(128) if not chr(c).isalnum() or chr(c).isupper())


def _alphanumeric(part: str | None) -> bytes:
    """``part`` case-folded, every character but 0-9 and a-z removed, as UTF-8."""
    folded = (part or "").casefold()
    if folded.isascii():
        return folded.encode().translate(None, _ASCII_NOT_ALPHANUMERIC)
    return _NOT_ALPHANUMERIC.sub("", folded).encode()


def address_key(*parts: str | None) -> str | None:
    """A digest of an address (street, postcode, country), the same however it is written
    (case, spaces, punctuation); None when the street or postcode is missing."""
    cleaned = [_alphanumeric(part) for part in parts]
    if len(cleaned) < 2 or not cleaned[0] or not cleaned[1]:
        return None
    return hashlib.sha256(b"|".join(cleaned)).hexdigest()[:32]
