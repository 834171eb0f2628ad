"""Customer tables: the people a shop sells to, what they consented to, and who must not be
contacted.

Consent is a state per purpose on the customer with an append-only trail of its changes;
suppressions are per address and channel, whoever the customer is.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from postpurchase.store.columns import BigId, str_enum
from postpurchase.store.models.base import Base
from postpurchase.store.models.touchpoints import Channel

if TYPE_CHECKING:
    from postpurchase.store.models.orders import Order


class ConsentState(enum.StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN = "unknown"


class ConsentPurpose(enum.StrEnum):
    """What a consent is for; each is a ``<purpose>_consent_*`` column set on customers."""

    EMAIL_MARKETING = "email_marketing"
    SMS_MARKETING = "sms_marketing"
    SMS = "sms"  # texts about the customer's own orders (transactional)


# An erased customer's ``external_id`` starts with this (postpurchase.privacy.erasure): the
# row stays as an anonymous husk that the ledger and consent trail refer to.
ERASED_PREFIX = "erased:"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    # The shop of the inbox event that created the row ("" for the engine's single default
    # shop); every look-up by platform id goes through it (see "Several shops" in README).
    shop: Mapped[str] = mapped_column(Text, server_default="", default="")
    external_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA name, for quiet hours
    # Consent per purpose (see ``postpurchase.consent``): what the customer said, who told us
    # and when they said it. "unknown" is the customer who never said either way.
    email_marketing_consent_state: Mapped[ConsentState] = mapped_column(
        str_enum(ConsentState, "email_marketing_consent_state"),
        default=ConsentState.UNKNOWN,
        server_default=ConsentState.UNKNOWN.value,
    )
    email_marketing_consent_source: Mapped[str | None] = mapped_column(String(32))
    email_marketing_consent_at: Mapped[datetime | None]
    sms_marketing_consent_state: Mapped[ConsentState] = mapped_column(
        str_enum(ConsentState, "sms_marketing_consent_state"),
        default=ConsentState.UNKNOWN,
        server_default=ConsentState.UNKNOWN.value,
    )
    sms_marketing_consent_source: Mapped[str | None] = mapped_column(String(32))
    sms_marketing_consent_at: Mapped[datetime | None]
    sms_consent_state: Mapped[ConsentState] = mapped_column(
        str_enum(ConsentState, "sms_consent_state"),
        default=ConsentState.UNKNOWN,
        server_default=ConsentState.UNKNOWN.value,
    )
    sms_consent_source: Mapped[str | None] = mapped_column(String(32))
    sms_consent_at: Mapped[datetime | None]
    source_updated_at: Mapped[datetime | None]  # the platform's updated_at: newest wins
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    orders: Mapped[list[Order]] = relationship(back_populates="customer")

    __table_args__ = (
        UniqueConstraint("source", "shop", "external_id"),
        # support finds a customer by the platform's id without knowing the platform or shop
        Index("ix_customers_external_id", "external_id"),
    )


class Suppression(Base):
    """An address or number that must not be contacted on a channel (until lifted)."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    address: Mapped[str] = mapped_column(String(320))  # lower-cased email or E.164 number
    reason: Mapped[str] = mapped_column(String(64))  # bounce, spamreport, unsubscribe, stop
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    lifted_at: Mapped[datetime | None]  # START/resubscribe lifts; the row stays for audit

    __table_args__ = (UniqueConstraint("channel", "address"),)


class ConsentChange(Base):
    """One change of one customer's consent: the audit trail a shop can show a regulator.

    Append-only, enforced by the database: a wrong entry is corrected by a new change.
    ``occurred_at`` is when the customer (or the shop, on their word) said it, as far as the
    source tells; ``reference`` points at the evidence (inbox event, provider event/message).
    """

    __tablename__ = "consent_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    purpose: Mapped[ConsentPurpose] = mapped_column(str_enum(ConsentPurpose, "consent_purpose"))
    from_state: Mapped[ConsentState] = mapped_column(str_enum(ConsentState, "consent_from_state"))
    to_state: Mapped[ConsentState] = mapped_column(str_enum(ConsentState, "consent_to_state"))
    source: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
