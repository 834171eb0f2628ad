"""Data subject requests from platforms without Shopify's compliance webhooks.

``POST /privacy/requests`` is signed like generic events (``X-Postpurchase-Signature`` with
``POSTPURCHASE_WEBHOOK_SECRET``). Its body::

    {"id": "dsr-2026-0042",                # the sender's request id: a resend is a duplicate
     "kind": "export" | "erase",
     "platform": "generic" | "woocommerce", # whose customer ids these are (default generic)
     "shop": "shop.example.com",           # optional
     "customer": {"external_id": "c-17", "email": "ana@example.org", "phone": "+351..."},
     "orders": ["A-1001"],                 # optional: more orders to erase (guest checkouts)
     "requested_at": "2026-11-30T09:00:00Z"}  # optional: when the person asked

The customer needs an ``external_id`` or an ``email``. The request is stored in the inbox the
way Shopify's are (``privacy.<kind>``, a body with the same ``customer`` and
``orders_to_redact`` keys), and fulfilled by the same housekeeping step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from postpurchase.inbox import InboxEntry, dedupe_key
from postpurchase.platforms.fields import Identifier, InvalidPayload, Timestamp, problems_of
from postpurchase.privacy.requests import ERASE, EVENT_PREFIX, EXPORT
from postpurchase.store.models import ClaimStatus

SOURCE = "generic"
# A clock ahead by more than this is wrong (as for generic events).
_FUTURE = timedelta(minutes=10)
_TEXT = r"^[\x21-\x7e]+$"  # printable ASCII without spaces


class _Person(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: Identifier | None = None
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, min_length=1, max_length=32)

    @field_validator("email")
    @classmethod
    def _usable(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"is not an email address: {exc}") from None
        return value.lower()  # stored lower-cased, as customers' are


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=64, pattern=_TEXT)
    kind: Literal["export", "erase"]
    platform: Literal["generic", "woocommerce"] = "generic"
    shop: str | None = Field(default=None, min_length=1, max_length=255, pattern=_TEXT)
    customer: _Person
    orders: list[Identifier] = Field(default_factory=list, max_length=250)
    requested_at: Timestamp | None = None


def entry(data: Any, *, now: datetime) -> InboxEntry:
    """The inbox row for a request body; InvalidPayload naming each wrong field."""
    if not isinstance(data, dict):
        raise InvalidPayload([("body", "must be a JSON object")])
    try:
        request = _Request.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(problems_of(exc)) from None
    person = request.customer
    if person.external_id is None and person.email is None:
        raise InvalidPayload([("customer", "must name the customer (external_id or email)")])
    if request.requested_at is not None and request.requested_at > now + _FUTURE:
        raise InvalidPayload([("requested_at", "is in the future")])
    kind = EXPORT if request.kind == "export" else ERASE
    body: dict[str, Any] = {
        "id": request.id,
        "customer": {
            key: value
            for key, value in (
                ("id", person.external_id),
                ("email", person.email),
                ("phone", person.phone),
            )
            if value is not None
        },
    }
    if kind == ERASE and request.orders:
        body["orders_to_redact"] = request.orders
    return InboxEntry(
        source=request.platform,
        dedupe_key=dedupe_key(SOURCE, request.shop or "-", "privacy", request.id),
        event_type=EVENT_PREFIX + kind,
        topic=f"privacy/{request.kind}",
        shop=request.shop,
        subject_id=person.external_id,
        occurred_at=request.requested_at or now,
        payload=body,
        status=ClaimStatus.IGNORED,
    )
