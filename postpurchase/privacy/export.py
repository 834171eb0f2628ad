"""Export: everything held about one customer, as one JSON document in the export folder.

Sections: profile, consents (current per purpose) and consent_history, orders (with items
and refunds), touchpoints (with their provider events, clicks and outcome), ledger (with the
balance), tier and tier_history, survey_answers, redemptions, referral_code, referrals,
birthday. Inbox payloads are not included: everything they said is in the sections above.
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

from postpurchase.settings import Settings
from postpurchase.store.models import (
    Base,
    ConsentChange,
    ConsentPurpose,
    Customer,
    CustomerBirthday,
    CustomerTier,
    CustomerTierChange,
    LoyaltyLedgerEntry,
    MessageEvent,
    Order,
    OrderItem,
    OrderRefund,
    Redemption,
    Referral,
    ReferralCode,
    SurveyResponse,
    Touchpoint,
    TouchpointOutcome,
)

SECTIONS = (
    "profile",
    "consents",
    "consent_history",
    "orders",
    "touchpoints",
    "ledger",
    "tier",
    "tier_history",
    "survey_answers",
    "redemptions",
    "referral_code",
    "referrals",
    "birthday",
)


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
    order_docs = _order_docs(session, cid)
    touchpoint_docs = _touchpoint_docs(session, cid)
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
        "orders": order_docs,
        "touchpoints": touchpoint_docs,
        "ledger": {"balance": sum(int(e["points"]) for e in ledger), "entries": ledger},
        "tier": _row(session.get(CustomerTier, cid)),
        "tier_history": _rows(
            session.scalars(
                select(CustomerTierChange)
                .where(CustomerTierChange.customer_id == cid)
                .order_by(CustomerTierChange.id)
            )
        ),
        "survey_answers": _rows(
            session.scalars(select(SurveyResponse).where(SurveyResponse.customer_id == cid))
        ),
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
    }


def _order_docs(session: Session, cid: int) -> list[dict[str, Any]]:
    """The customer's orders, each with its items and refunds."""
    orders = session.scalars(select(Order).where(Order.customer_id == cid).order_by(Order.id))
    order_docs = []
    for order in orders:
        doc = _row(order) or {}
        doc["items"] = _rows(
            session.scalars(select(OrderItem).where(OrderItem.order_id == order.id))
        )
        doc["refunds"] = _rows(
            session.scalars(select(OrderRefund).where(OrderRefund.order_id == order.id))
        )
        order_docs.append(doc)
    return order_docs


def _touchpoint_docs(session: Session, cid: int) -> list[dict[str, Any]]:
    """The customer's messages, each with its provider events, clicks and outcome."""
    touchpoint_docs = []
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
        touchpoint_docs.append(doc)
    return touchpoint_docs


def write_export(directory: Path, document: dict[str, Any], *, name: str) -> Path:
    """Write ``document`` as ``<name>.json`` in ``directory`` (whole or not at all)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{name}.json"
    partial = directory / f".{name}.tmp"
    partial.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, final)
    return final
