"""What the customer page shows: finding a customer, and their whole story in one view.

The story is the privacy export's document (``privacy.export.customer_document``: profile,
consents and their history, orders, touchpoints with provider events and outcome, ledger,
tier and history, survey answers), plus what only support needs: the suppressions on the
customer's addresses with where each came from, the orders messages are credited with, the
actions taken from the pages, and the journey laid out as one timeline.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, true, union
from sqlalchemy.orm import Session

from postpurchase.privacy.export import customer_document
from postpurchase.store.models import AttributedOrder, Channel, Customer, Order, Suppression
from postpurchase.store.page_actions import actions_on

_PHONE_MARKS = re.compile(r"[\s().-]")
_MAX_FOUND = 20


def find_customers(session: Session, query: str, shop: str | None = None) -> list[Customer]:
    """Customers (of every shop, or of ``shop``) whose email, phone, platform id (or
    ``platform:id``) or one of whose orders' number or platform id is ``query``; at most
    twenty.

    One indexed lookup per kind of reference, joined in a UNION: an OR across them would make
    the database walk every customer."""
    query = query.strip()
    if not query:
        return []
    lookups: list[Any] = [
        select(Customer.id).where(Customer.email == query.lower()),
        select(Customer.id).where(Customer.external_id == query),
    ]
    platform, _, external_id = query.partition(":")
    if external_id:
        lookups.append(
            select(Customer.id).where(
                Customer.source == platform, Customer.external_id == external_id
            )
        )
    phone = _PHONE_MARKS.sub("", query)
    if phone.lstrip("+").isdigit() and len(phone) >= 7:
        lookups.append(
            select(Customer.id).where(
                Customer.phone == (phone if phone.startswith("+") else f"+{phone}")
            )
        )
    number = query if query.startswith("#") else f"#{query}"
    for column, value in ((Order.name, number), (Order.external_id, query)):
        lookups.append(
            select(Order.customer_id).where(column == value, Order.customer_id.is_not(None))
        )
    ids = set(session.scalars(union(*lookups)).all())
    if not ids:
        return []
    of_shop = Customer.shop == shop if shop is not None else true()
    return list(
        session.scalars(
            select(Customer)
            .where(Customer.id.in_(ids), of_shop)
            .order_by(Customer.id)
            .limit(_MAX_FOUND)
        )
    )


def suppressions_of(session: Session, customer: Customer) -> list[Suppression]:
    """Suppressions on the customer's email and phone, lifted ones too (they stay for audit)."""
    addresses = []
    if customer.email:
        addresses.append(
            (Suppression.channel == Channel.EMAIL) & (Suppression.address == customer.email.lower())
        )
    if customer.phone:
        addresses.append(
            (Suppression.channel == Channel.SMS) & (Suppression.address == customer.phone)
        )
    if not addresses:
        return []
    return list(
        session.scalars(select(Suppression).where(or_(*addresses)).order_by(Suppression.id))
    )


def timeline(
    document: dict[str, Any], credited: dict[int, list[AttributedOrder]]
) -> list[dict[str, Any]]:
    """The journey, oldest first: each touchpoint planned (or held out), then what became of
    it (sent, skipped with the reason, cancelled, failed, unknown), its provider events and
    clicks, and the orders credited to it."""
    entries: list[dict[str, Any]] = []

    def add(at: Any, kind: str, text: str, tone: str = "") -> None:
        if at is not None:
            entries.append({"at": str(at), "kind": kind, "text": text, "tone": tone})

    for tp in document["touchpoints"]:
        what = f"{tp['campaign_id']} step {tp['step']} by {tp['channel']}"
        if tp.get("arm") == "holdout":
            add(tp["created_at"], "held out", f"{what}: held out (control group)", "muted")
            continue
        add(tp["created_at"], "planned", f"{what}, due {tp['due_at'][:16].replace('T', ' ')}")
        status, reason = tp["status"], tp.get("reason")
        if status == "sent":
            add(tp["sent_at"], "sent", what, "ok")
        elif status in ("skipped", "cancelled", "failed", "unknown"):
            tone = "bad" if status in ("failed", "unknown") else "warn"
            add(tp["updated_at"], status, f"{what}: {reason or 'no reason recorded'}", tone)
        for event in tp["provider_events"]:
            add(
                event["occurred_at"],
                event["event"],
                f"{what}: {event['event']} ({event['provider']})",
            )
        for order in credited.get(tp["id"], []):
            add(
                order.paid_at,
                "conversion",
                f"order credited to {what}: {order.revenue} {order.currency}",
                "ok",
            )
    entries.sort(key=lambda e: e["at"])
    return entries


def customer_view(session: Session, customer: Customer, *, now: datetime) -> dict[str, Any]:
    """Everything the customer page shows about ``customer``."""
    document = customer_document(session, customer, now=now)
    ids = [tp["id"] for tp in document["touchpoints"]]
    credited: dict[int, list[AttributedOrder]] = {}
    if ids:
        for row in session.scalars(
            select(AttributedOrder).where(AttributedOrder.touchpoint_id.in_(ids))
        ):
            credited.setdefault(row.touchpoint_id, []).append(row)
    return {
        "customer": customer,
        "document": document,
        "timeline": timeline(document, credited),
        "suppressions": suppressions_of(session, customer),
        "actions": actions_on(session, f"customer:{customer.id}"),
    }
