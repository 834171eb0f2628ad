"""Export: everything held about one customer, as one JSON document in the export folder.

Sections: profile, consents (current per purpose) and consent_history, suppressions of the
customer's address and number, orders (with items and refunds), touchpoints (with their
provider events, clicks and outcome), conversions (orders credited to a message), ledger (with
the balance), tier and tier_history, survey_answers (CSAT) and nps_answers, reviews,
redemptions, referral_code, referrals, birthday, address_keys, privacy_requests. Inbox
payloads are not included: everything they said is in the sections above.

``TABLES`` says, for every table, which section holds it or why no section does (a test keeps
it complete, so a new table cannot be forgotten here).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from postpurchase.reviews.models import ProductReview
from postpurchase.settings import Settings
from postpurchase.store.models import (
    AttributedOrder,
    Base,
    ConsentChange,
    ConsentPurpose,
    Customer,
    CustomerAddressKey,
    CustomerBirthday,
    CustomerTier,
    CustomerTierChange,
    LoyaltyLedgerEntry,
    MessageEvent,
    Order,
    OrderItem,
    OrderRefund,
    PrivacyRequest,
    Redemption,
    Referral,
    ReferralCode,
    Suppression,
    SurveyResponse,
    Touchpoint,
    TouchpointOutcome,
)
from postpurchase.store.page_actions import PageAction
from postpurchase.surveys.models import NpsResponse

SECTIONS = (
    "profile",
    "consents",
    "consent_history",
    "suppressions",
    "orders",
    "touchpoints",
    "conversions",
    "ledger",
    "tier",
    "tier_history",
    "survey_answers",
    "nps_answers",
    "reviews",
    "redemptions",
    "referral_code",
    "referrals",
    "birthday",
    "address_keys",
    "privacy_requests",
    "support_actions",
)
_NOT_ABOUT_ONE_PERSON = "no section: "
# Every table: the section that exports it, or why none does.
TABLES: dict[str, str] = {
    "customers": "profile",
    "consent_changes": "consent_history",
    "suppressions": "suppressions",
    "orders": "orders",
    "order_items": "orders",
    "order_refunds": "orders",
    "touchpoints": "touchpoints",
    "message_events": "touchpoints",
    "touchpoint_outcomes": "touchpoints",
    "attributed_orders": "conversions",
    "loyalty_ledger": "ledger",
    "customer_tiers": "tier",
    "customer_tier_history": "tier_history",
    "survey_responses": "survey_answers",
    "nps_responses": "nps_answers",
    "product_reviews": "reviews",
    "redemptions": "redemptions",
    "referral_codes": "referral_code",
    "referrals": "referrals",
    "customer_birthdays": "birthday",
    "customer_address_keys": "address_keys",
    "privacy_requests": "privacy_requests",
    "page_actions": "support_actions",
    "inbox_events": _NOT_ABOUT_ONE_PERSON + "what the platforms sent, in the sections above",
    "rejected_webhooks": _NOT_ABOUT_ONE_PERSON + "refused requests, linked to no customer",
    "support_notifications": _NOT_ABOUT_ONE_PERSON + "copies of answers (in survey sections)",
    "products": _NOT_ABOUT_ONE_PERSON + "the shop's catalogue",
    "reward_pool_codes": _NOT_ABOUT_ONE_PERSON + "codes; the one handed out is in redemptions",
    "campaign_pauses": _NOT_ABOUT_ONE_PERSON + "campaign state",
    "campaign_days": _NOT_ABOUT_ONE_PERSON + "aggregates over many customers",
    "outcome_snapshots": _NOT_ABOUT_ONE_PERSON + "aggregates over many customers",
}


def export_dir(settings: Settings) -> Path:
    return settings.privacy_export_dir or settings.var_dir / "privacy-exports"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _row(obj: Base | None, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {
        column.key: _plain(getattr(obj, column.key))
        for column in obj.__table__.columns
        if column.key not in leave_out
    }


def _rows(objs: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return [r for r in (_row(o, **kwargs) for o in objs) if r is not None]


def customer_document(session: Session, customer: Customer, *, now: datetime) -> dict[str, Any]:
    """Everything held about ``customer``, section by section (see the module docstring)."""
    cid = customer.id
    orders = _orders(session, cid)
    touchpoints = _touchpoints(session, cid)
    ledger = _rows(
        session.scalars(
            select(LoyaltyLedgerEntry)
            .where(LoyaltyLedgerEntry.customer_id == cid)
            .order_by(LoyaltyLedgerEntry.id)
        )
    )
    consents = {
        purpose.value: {
            "state": _plain(getattr(customer, f"{purpose.value}_consent_state")),
            "source": getattr(customer, f"{purpose.value}_consent_source"),
            "at": _plain(getattr(customer, f"{purpose.value}_consent_at")),
        }
        for purpose in ConsentPurpose
    }
    addresses = [a for a in (customer.email, customer.phone) if a]
    return {
        "exported_at": now.isoformat(),
        "customer_id": cid,
        "profile": _row(customer),
        "consents": consents,
        "consent_history": _rows(
            session.scalars(
                select(ConsentChange)
                .where(ConsentChange.customer_id == cid)
                .order_by(ConsentChange.id)
            )
        ),
        "suppressions": _rows(
            session.scalars(select(Suppression).where(Suppression.address.in_(addresses)))
        ),
        "orders": orders,
        "touchpoints": touchpoints,
        "conversions": _rows(
            session.scalars(
                select(AttributedOrder)
                .where(AttributedOrder.order_id.in_([o["id"] for o in orders]))
                .order_by(AttributedOrder.order_id)
            )
        ),
        "ledger": {"balance": sum(int(e["points"]) for e in ledger), "entries": ledger},
        "tier": _row(session.get(CustomerTier, cid)),
        "tier_history": _rows(
            session.scalars(
                select(CustomerTierChange)
                .where(CustomerTierChange.customer_id == cid)
                .order_by(CustomerTierChange.id)
            )
        ),
        **_feedback(session, cid),
        **_rewards(session, cid),
    }


def _orders(session: Session, cid: int) -> list[dict[str, Any]]:
    docs = []
    for order in session.scalars(select(Order).where(Order.customer_id == cid).order_by(Order.id)):
        doc = _row(order) or {}
        doc["items"] = _rows(
            session.scalars(select(OrderItem).where(OrderItem.order_id == order.id))
        )
        doc["refunds"] = _rows(
            session.scalars(select(OrderRefund).where(OrderRefund.order_id == order.id))
        )
        docs.append(doc)
    return docs


def _touchpoints(session: Session, cid: int) -> list[dict[str, Any]]:
    docs = []
    touchpoints = session.scalars(
        select(Touchpoint).where(Touchpoint.customer_id == cid).order_by(Touchpoint.id)
    )
    for touchpoint in touchpoints:
        doc = _row(touchpoint, leave_out=("claimed_by", "lease_until", "attempts")) or {}
        events = _rows(
            session.scalars(
                select(MessageEvent)
                .where(MessageEvent.touchpoint_id == touchpoint.id)
                .order_by(MessageEvent.occurred_at)
            )
        )
        doc["provider_events"] = events
        doc["clicks"] = [e for e in events if e["event"] == "click"]
        doc["outcome"] = _row(session.get(TouchpointOutcome, touchpoint.id))
        docs.append(doc)
    return docs


def _feedback(session: Session, cid: int) -> dict[str, Any]:
    """What the customer answered and wrote."""
    return {
        "survey_answers": _rows(
            session.scalars(
                select(SurveyResponse)
                .where(SurveyResponse.customer_id == cid)
                .order_by(SurveyResponse.id)
            )
        ),
        "nps_answers": _rows(
            session.scalars(
                select(NpsResponse).where(NpsResponse.customer_id == cid).order_by(NpsResponse.id)
            )
        ),
        "reviews": _rows(
            session.scalars(
                select(ProductReview)
                .where(ProductReview.customer_id == cid)
                .order_by(ProductReview.id)
            ),
            leave_out=("moderated_by",),
        ),
        "privacy_requests": _rows(
            session.scalars(
                select(PrivacyRequest)
                .where(PrivacyRequest.customer_id == cid)
                .order_by(PrivacyRequest.id)
            )
        ),
    }


def _rewards(session: Session, cid: int) -> dict[str, Any]:
    """Points spent, referrals, and what loyalty keeps to give birthday and referral points."""
    return {
        "redemptions": _rows(
            session.scalars(select(Redemption).where(Redemption.customer_id == cid)),
            leave_out=("idempotency_key", "attempts", "last_error"),
        ),
        "referral_code": _row(session.get(ReferralCode, cid)),
        "referrals": _rows(
            session.scalars(
                select(Referral).where(
                    or_(Referral.referred_customer_id == cid, Referral.referrer_customer_id == cid)
                )
            )
        ),
        "birthday": _row(session.get(CustomerBirthday, cid)),
        # what support did about the customer from the pages, and why (not who: staff's own)
        "support_actions": _rows(
            session.scalars(
                select(PageAction)
                .where(PageAction.subject == f"customer:{cid}")
                .order_by(PageAction.id)
            ),
            leave_out=("user_name",),
        ),
        "address_keys": [
            key
            for key in session.scalars(
                select(CustomerAddressKey.address_key).where(CustomerAddressKey.customer_id == cid)
            )
        ],
    }


def write_export(directory: Path, document: dict[str, Any], *, name: str) -> Path:
    """Write ``document`` as ``<name>.json`` in ``directory`` (whole or not at all)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{name}.json"
    partial = directory / f".{name}.tmp"
    partial.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, final)
    return final
