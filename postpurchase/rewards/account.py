"""A customer's loyalty account as the rewards page, storefront API and CLI show it: balance,
tier and progress to the next one, the rewards on offer to them, and the codes they hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.customers import find_customer
from postpurchase.loyalty.ledger import balance
from postpurchase.rewards.redemption import RedemptionView, held_codes
from postpurchase.rewards.referrals import referral_code_for
from postpurchase.store.database import SessionFactory, reading, transaction
from postpurchase.store.models import Customer, CustomerTier, RedemptionStatus


@dataclass(frozen=True)
class Offer:
    name: str
    title: str
    description: str
    points: int
    affordable: bool
    missing: int  # points still needed (0 when affordable)
    valid_days: int


@dataclass(frozen=True)
class Account:
    customer_id: int
    label: str
    first_name: str | None
    balance: int
    tier: str
    next_tier: str | None
    progress: float  # 0..1 towards next_tier (1 with no next tier)
    progress_text: str
    rewards: list[Offer]
    codes: list[RedemptionView]
    referral_code: str | None = None  # when referrals earn points

    @property
    def live_codes(self) -> list[RedemptionView]:
        return [c for c in self.codes if c.status is RedemptionStatus.ISSUED]

    def as_json(self) -> dict[str, object]:
        """The storefront API's shape (strings for dates, no internal ids but the customer's)."""
        return {
            "balance": self.balance,
            "tier": self.tier,
            "next_tier": self.next_tier,
            "progress": round(self.progress, 3),
            "progress_text": self.progress_text,
            "rewards": [offer.__dict__ for offer in self.rewards],
            "codes": [
                code_json(c) for c in self.codes if c.status is not RedemptionStatus.REFUNDED
            ],
            "referral_code": self.referral_code,
        }


def code_json(view: RedemptionView) -> dict[str, object]:
    return {
        "reward": view.reward,
        "code": view.code,
        "status": view.status.value,
        "points": view.points,
        "expires_at": view.expires_at.isoformat(),
    }


def _progress(
    config: LoyaltyConfig, tier: CustomerTier | None
) -> tuple[str, str | None, float, str]:
    names = [level.name for level in config.tiers.levels]
    current = config.tiers.level(tier.tier if tier else None)
    index = names.index(current.name)
    if index + 1 >= len(names):
        return current.name, None, 1.0, "top tier"
    target = config.tiers.levels[index + 1]
    spend = tier.trailing_spend if tier else Decimal(0)
    orders = tier.trailing_orders if tier else 0
    parts: list[float] = []
    needs: list[str] = []
    if target.min_spend:
        parts.append(float(min(spend / target.min_spend, Decimal(1))))
        if spend < target.min_spend:
            needs.append(f"spend {target.min_spend - spend:.2f} {config.shop_currency} more")
    if target.min_orders:
        parts.append(min(orders / target.min_orders, 1.0))
        if orders < target.min_orders:
            needs.append(f"{target.min_orders - orders} more order(s)")
    progress = min(parts) if parts else 0.0
    text = " and ".join(needs) or "qualifies at the next refresh"
    return current.name, target.name, progress, text


def account_of(
    store: SessionFactory,
    config: LoyaltyConfig,
    *,
    customer_id: int | None = None,
    customer_reference: str | None = None,
    shop: str | None = None,
    now: datetime | None = None,
) -> Account:
    """The account of the customer given by id or by reference (email, platform id; in
    ``shop`` when given)."""
    with reading(store) as session:
        if customer_id is not None:
            customer = session.get_one(Customer, customer_id)
        else:
            customer = find_customer(session, customer_reference or "", shop)
        points = balance(session, customer.id)
        tier_row = session.scalars(
            select(CustomerTier).where(CustomerTier.customer_id == customer.id)
        ).first()
        codes = held_codes(session, customer.id)
    referral = config.more_ways_to_earn.referral
    code = None
    if referral.referrer or referral.referred:
        # Made on first use: the one write an account view may do.
        with transaction(store) as session:
            code = referral_code_for(session, customer.id)
    tier, next_tier, progress, text = _progress(config, tier_row)
    offers = [
        Offer(
            reward.name,
            reward.title,
            reward.describe(config.shop_currency),
            reward.points,
            points >= reward.points,
            max(0, reward.points - points),
            reward.valid_days,
        )
        for reward in config.rewards
        if reward.allowed_for(tier_row.tier if tier_row else None)
    ]
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    label = f"{customer.source}:{customer.external_id}" + (f" ({name})" if name else "")
    return Account(
        customer.id,
        label,
        customer.first_name,
        points,
        tier,
        next_tier,
        progress,
        text,
        offers,
        codes,
        code,
    )
