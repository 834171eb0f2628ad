"""The engine's tables, as SQLAlchemy 2 typed models.

Idempotency lives in the unique constraints here: an inbox row per delivery (``dedupe_key``),
a touchpoint per subject + campaign + step + channel, a ledger row per cause, a message event
per provider event id. Writers rely on them (insert, and treat a conflict as "already done").

Money is ``Numeric`` with its ISO 4217 currency beside it; times are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from postpurchase.store.columns import NAMING_CONVENTION, BigId, Json, Money, UtcDateTime, str_enum


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), Decimal: Money, dict[str, Any]: Json}


class ClaimStatus(enum.StrEnum):
    """Life of a claimable row (inbox event, touchpoint) while work is done on it."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"
    IGNORED = "ignored"


# The inbox rows a claim looks at, as the claim index's condition (SQL).
INBOX_CLAIMABLE = "status IN ('pending', 'claimed')"
# The inbox rows whose payload may still hold personal fields (retention's index condition).
INBOX_PERSONAL = "personal_data_removed_at IS NULL"
# The inbox rows processing gave up on (the health page's index condition).
INBOX_FAILED = "status = 'failed'"


class InboxEvent(Base):
    """A webhook or internal event, stored before it is acknowledged and processed later."""

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))  # shopify, woocommerce, generic, internal, ...
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))  # canonical, e.g. order.paid
    topic: Mapped[str | None] = mapped_column(String(128))  # the platform's own name
    shop: Mapped[str | None] = mapped_column(String(255))
    subject_id: Mapped[str | None] = mapped_column(String(64))  # the platform's order/customer id
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    payload: Mapped[dict[str, Any]]
    status: Mapped[ClaimStatus] = mapped_column(
        str_enum(ClaimStatus, "claim_status"), default=ClaimStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # When the payload lost its personal fields (retention or erasure: postpurchase.privacy).
    personal_data_removed_at: Mapped[datetime | None]

    # Only rows still to be processed (migration 0005 says why).
    __table_args__ = (
        Index(
            "ix_inbox_events_claimable",
            "id",
            postgresql_where=text(INBOX_CLAIMABLE),
            sqlite_where=text(INBOX_CLAIMABLE),
        ),
        # only the rows whose payload may still hold personal data: what retention walks
        Index(
            "ix_inbox_events_personal",
            "id",
            postgresql_where=text(INBOX_PERSONAL),
            sqlite_where=text(INBOX_PERSONAL),
        ),
        # only failed rows, by reason: the health page groups them and retries one reason
        Index(
            "ix_inbox_events_failed",
            "last_error",
            postgresql_where=text(INBOX_FAILED),
            sqlite_where=text(INBOX_FAILED),
        ),
    )


class RejectedWebhook(Base):
    """Requests refused at the door, counted per route, status and kind of reason per hour.

    ``reason``, ``headers`` and ``body_excerpt`` are those of the first request of the kind in
    that hour; ``samples`` keeps the first few (safe headers, start of the body) and ``count``
    how many there were, up to ``last_seen_at``. Rows from before counting (migration 0008)
    have no ``reason_key`` and count 1.
    """

    __tablename__ = "rejected_webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    route: Mapped[str] = mapped_column(String(128))
    status_code: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]]
    body_excerpt: Mapped[str] = mapped_column(Text, default="")
    reason_key: Mapped[str | None] = mapped_column(String(64))
    bucket_start: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    count: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    samples: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)

    __table_args__ = (UniqueConstraint("reason_key", "bucket_start"),)


class ConsentState(enum.StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN = "unknown"


class ConsentPurpose(enum.StrEnum):
    """What a consent is for; each is a ``<purpose>_consent_*`` column set on customers."""

    EMAIL_MARKETING = "email_marketing"
    SMS_MARKETING = "sms_marketing"
    SMS = "sms"  # texts about the customer's own orders (transactional)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
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
        UniqueConstraint("source", "external_id"),
        # support finds a customer by the platform's id without knowing the platform
        Index("ix_customers_external_id", "external_id"),
    )


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
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
        UniqueConstraint("source", "external_id"),
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
        UniqueConstraint("source", "external_id"),
        # only the products still unknown: what a look-up run walks
        Index(
            "ix_products_unknown",
            "lookup_after",
            postgresql_where=text("source_updated_at IS NULL"),
            sqlite_where=text("source_updated_at IS NULL"),
        ),
    )


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class TouchpointStatus(enum.StrEnum):
    """Planned work becomes exactly one of the final states; ``unknown`` is never retried.

    ``claimed`` rows whose worker died go back to the pool; ``sending`` marks the one message a
    worker is handing to a provider right now, so if that worker dies the message may have gone
    and becomes ``unknown`` instead of being sent again.
    """

    PLANNED = "planned"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Touchpoint(Base):
    """One message due to one customer at one time, planned from a campaign step."""

    __tablename__ = "touchpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # What the touchpoint is about: "order:<id>" or e.g. "tier:<customer id>:<change id>".
    subject_key: Mapped[str] = mapped_column(String(128))
    campaign_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(default=0)  # 0 the first message, 1.. reminders
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    due_at: Mapped[datetime]
    status: Mapped[TouchpointStatus] = mapped_column(
        str_enum(TouchpointStatus, "touchpoint_status"), default=TouchpointStatus.PLANNED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # skip reason, cancel cause or error
    sent_at: Mapped[datetime | None]
    # Set at planning (outcomes/assignment.py) and never changed: "treatment" or "holdout"
    # (NULL on rows planned before holdouts existed: treatment), and the A/B variant's id.
    arm: Mapped[str | None] = mapped_column(String(16))
    variant: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        UniqueConstraint("subject_key", "campaign_id", "step", "channel"),
        Index("ix_touchpoints_due", "status", "due_at"),
    )


class LedgerKind(enum.StrEnum):
    AWARD = "award"
    REVERSAL = "reversal"
    EXPIRY = "expiry"
    ADJUSTMENT = "adjustment"
    REDEMPTION = "redemption"  # points spent on a reward (postpurchase.rewards)
    REDEMPTION_REFUND = "redemption_refund"  # a redemption's points given back
    BONUS = "bonus"  # points for a cause other than an order: sign-up, birthday, referral


class LoyaltyLedgerEntry(Base):
    """Append-only: a customer's balance is the sum of their rows, one row per cause."""

    __tablename__ = "loyalty_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[LedgerKind] = mapped_column(str_enum(LedgerKind, "ledger_kind"))
    points: Mapped[int]
    cause: Mapped[str] = mapped_column(String(255), unique=True)  # e.g. "award:order:42"
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime | None]


class CustomerTier(Base):
    """A customer's current tier and the scores it was computed from."""

    __tablename__ = "customer_tiers"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime]
    recency_score: Mapped[int | None]
    frequency_score: Mapped[int | None]
    monetary_score: Mapped[int | None]
    trailing_spend: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    trailing_orders: Mapped[int] = mapped_column(default=0)
    downgrade_pending_since: Mapped[datetime | None]  # grace period against flapping
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CustomerTierChange(Base):
    __tablename__ = "customer_tier_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    from_tier: Mapped[str | None] = mapped_column(String(64))
    to_tier: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime]


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


class MessageEvent(Base):
    """Delivery feedback from a provider (delivered, open, click, bounce, ...)."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoints.id"), index=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]]
    # When ``detail`` lost its personal fields (retention or erasure: postpurchase.privacy).
    personal_data_removed_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),)


class SurveyResponse(Base):
    """A 1-5 score sent from the survey page; one per touchpoint, the last answer sent wins."""

    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoints.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)  # written on the page with the score
    responded_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_1_to_5"),)


# --- outcomes (postpurchase/outcomes): small tables the measure_outcomes DAG refreshes -------


class CampaignPause(Base):
    """A campaign the deliverability guard (or ops) paused: its touchpoints wait unclaimed.

    ``resumed_at`` set means it runs again; the row stays so the guard only counts sends made
    after the resume, and ops can see when and why it was paused.
    """

    __tablename__ = "campaign_pauses"

    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    paused_at: Mapped[datetime]
    resumed_at: Mapped[datetime | None]


class TouchpointOutcome(Base):
    """What happened to one message: rebuilt from touchpoints and message events."""

    __tablename__ = "touchpoint_outcomes"

    touchpoint_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(32))  # "" without variants
    arm: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    step: Mapped[int]
    customer_id: Mapped[int] = mapped_column(BigId)
    # when it went, or (held out, not sent) when it would have gone
    moment: Mapped[datetime]
    # when it was due: the start of the holdout comparison in both arms, so a late send
    # (an outage, a pause, quiet hours) does not shift one arm's window against the other
    due_at: Mapped[datetime]
    sent: Mapped[bool]
    delivered: Mapped[bool]
    opened: Mapped[bool]
    first_click_at: Mapped[datetime | None]  # by a person; scanners left out
    scanner_clicks: Mapped[int]
    bounced: Mapped[bool]
    complained: Mapped[bool]
    unsubscribed: Mapped[bool]

    __table_args__ = (
        Index("ix_touchpoint_outcomes_customer_click", "customer_id", "first_click_at"),
    )


class AttributedOrder(Base):
    """An order credited to the last message clicked within its attribution window."""

    __tablename__ = "attributed_orders"

    order_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    touchpoint_id: Mapped[int] = mapped_column(BigId, index=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(32))
    paid_at: Mapped[datetime] = mapped_column(index=True)
    currency: Mapped[str] = mapped_column(String(3))
    revenue: Mapped[Decimal]  # the order total less what was refunded


class CampaignDay(Base):
    """A campaign's funnel for the messages due on one (UTC) day, per variant and arm."""

    __tablename__ = "campaign_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    variant: Mapped[str] = mapped_column(String(32), primary_key=True)
    arm: Mapped[str] = mapped_column(String(16), primary_key=True)
    planned: Mapped[int]
    held_out: Mapped[int]
    sent: Mapped[int]
    delivered: Mapped[int]
    opened: Mapped[int]
    clicked: Mapped[int]
    scanner_clicks: Mapped[int]
    bounced: Mapped[int]
    complaints: Mapped[int]
    unsubscribed: Mapped[int]
    converted: Mapped[int]  # orders attributed to a click on these messages
    revenue: Mapped[Decimal]
    # For the holdout comparison: first messages, and those whose customer paid an order
    # within the window after it (clicked or not; held out or not).
    recipients: Mapped[int]
    buyers: Mapped[int]
    buyer_revenue: Mapped[Decimal]


class OutcomeSnapshot(Base):
    """A named figure set (the shop KPIs), recomputed at each refresh."""

    __tablename__ = "outcome_snapshots"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]]
    refreshed_at: Mapped[datetime]


# --- rewards (postpurchase/rewards): redemptions, code pools, more ways to earn ---------


class RedemptionStatus(enum.StrEnum):
    """Life of a redemption. ``pending``: points debited, the code not yet confirmed by the
    platform (a recovery step completes or refunds it). ``refunded``: the platform refused, the
    points came back and no code exists. ``expired``: unused past ``expires_at``."""

    PENDING = "pending"
    ISSUED = "issued"
    USED = "used"
    EXPIRED = "expired"
    REFUNDED = "refunded"


class Redemption(Base):
    """Points spent on a reward: one ledger debit (cause ``redemption:<id>``) and one code.

    The code is chosen before the platform is asked for it, so a retry asks for the same code
    and can never make a second one for the same debit.
    """

    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reward: Mapped[str] = mapped_column(String(64))
    # As the catalogue said when redeemed, for messages (which do not read the catalogue).
    title: Mapped[str] = mapped_column(String(120), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    points: Mapped[int]  # 0 for a gift (a tier's welcome reward)
    platform: Mapped[str] = mapped_column(String(32))  # shopify, woocommerce, pool
    code: Mapped[str] = mapped_column(String(64), unique=True)
    platform_ref: Mapped[str | None] = mapped_column(String(255))  # discount gid, coupon id
    status: Mapped[RedemptionStatus] = mapped_column(
        str_enum(RedemptionStatus, "redemption_status"), default=RedemptionStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime]
    issued_at: Mapped[datetime | None]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))  # used on
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (Index("ix_redemptions_status_expires", "status", "expires_at"),)


class PoolCode(Base):
    """A code imported for a reward (platforms without an API): handed out once."""

    __tablename__ = "reward_pool_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reward: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"), unique=True)
    imported_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_reward_pool_codes_free", "reward", "redemption_id"),)


class CustomerBirthday(Base):
    """A customer's birthday, for once-a-year loyalty points (no year: it is not needed)."""

    __tablename__ = "customer_birthdays"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    month: Mapped[int]
    day: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("month BETWEEN 1 AND 12 AND day BETWEEN 1 AND 31", name="valid_date"),
        Index("ix_customer_birthdays_month_day", "month", "day"),
    )


class ReferralCode(Base):
    """A customer's own referral code (made when first shown), for links and checkout."""

    __tablename__ = "referral_codes"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ReferralStatus(enum.StrEnum):
    REWARDED = "rewarded"  # both got their points
    REFUSED = "refused"  # see reason: same person, not a first order, refunded
    REVERSED = "reversed"  # rewarded, then the order was refunded or cancelled


class Referral(Base):
    """A referred customer's first order with a referral code: decided once per customer."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    referred_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    referrer_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[ReferralStatus] = mapped_column(str_enum(ReferralStatus, "referral_status"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class CustomerAddressKey(Base):
    """Digests of the shipping addresses a customer ordered to (events.address_key), so a
    referral to oneself at the same address is recognised without keeping the address."""

    __tablename__ = "customer_address_keys"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    address_key: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


# --- privacy (postpurchase/privacy): data subject requests and their fulfilment ----------


class PrivacyRequest(Base):
    """A request to export or erase a customer's data (or all of a shop's), and its outcome.

    ``subject`` names what the request is about without personal data: a platform customer id
    (``shopify:191167``), an engine customer id (``customer:42``) or a shop domain. ``result``
    says what was done (counts, the export's file); ``fulfilled_at`` is None while it waits.
    """

    __tablename__ = "privacy_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # export, erase, erase_shop
    origin: Mapped[str] = mapped_column(String(32))  # shopify, cli
    shop: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    inbox_event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[datetime]
    fulfilled_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


# Tables of other packages that share this metadata (migrations compare against all of it).
from postpurchase.reviews import models as _review_models  # noqa: E402, F401
from postpurchase.store import page_actions as _page_actions  # noqa: E402, F401
from postpurchase.surveys import models as _survey_models  # noqa: E402, F401
