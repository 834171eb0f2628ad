"""Reward tables (postpurchase/rewards): redemptions, code pools and the other ways to earn
points (birthdays, referrals).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from postpurchase.store.columns import BigId, str_enum
from postpurchase.store.models.base import Base


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

    __table_args__ = (
        Index("ix_redemptions_status_expires", "status", "expires_at"),
        # Codes on orders are matched without case (postpurchase.rewards.used_codes.mark_used).
        Index("ix_redemptions_upper_code", func.upper(code)),
    )


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

    # Codes on orders are matched without case (postpurchase.rewards.referrals).
    __table_args__ = (Index("ix_referral_codes_upper_code", func.upper(code)),)


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
