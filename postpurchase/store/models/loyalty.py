"""Loyalty tables: the append-only points ledger (one row per cause) and customer tiers."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    ForeignKey,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from postpurchase.store.columns import BigId, str_enum
from postpurchase.store.models.base import Base


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
