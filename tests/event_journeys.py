"""Building realistic canonical events, storing them in the inbox, and reading the result."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from postpurchase.campaigns.config import CampaignConfig, load_campaigns
from postpurchase.events import CanonicalEvent
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.processing.batch import InboxSummary
from postpurchase.processing.drain import process_inbox
from postpurchase.settings import PROJECT_ROOT
from postpurchase.store.database import transaction
from postpurchase.store.inbox_claims import claim_inbox_rows
from postpurchase.store.models import InboxEvent, Touchpoint

NEW_YORK = ZoneInfo("America/New_York")
_dedupe = itertools.count(1)


def at(text: str) -> datetime:
    """An aware UTC datetime from ISO text (with its offset)."""
    return datetime.fromisoformat(text).astimezone(UTC)


def order_event(
    kind: str,
    occurred_at: str,
    *,
    order_id: str = "5001",
    customer_id: str = "c-77",
    email: str | None = "mara@example.com",
    phone: str | None = None,
    time_zone: str | None = "America/New_York",
    updated_at: str | None = None,
    product_type: str = "electronics",
    total: str = "249.00",
    placed_at: str = "2026-03-01T15:00:00+00:00",
    **extra: object,
) -> dict:
    """A canonical event payload about one order, as intake stores it."""
    customer = {"external_id": customer_id, "first_name": "Mara", "time_zone": time_zone}
    if email:
        customer["email"] = email
    if phone:
        customer["phone"] = phone
    order = {
        "external_id": order_id,
        "name": f"#{order_id}",
        "currency": "USD",
        "total": total,
        "subtotal": total,
        "placed_at": placed_at,
        "updated_at": updated_at or occurred_at,
        "lines": [
            {
                "external_id": f"{order_id}-1",
                "title": "Smart speaker",
                "product_type": product_type,
                "quantity": 1,
                "unit_price": total,
            }
        ],
        "customer": customer,
    }
    payload = {"type": kind, "occurred_at": occurred_at, "order": order, **extra}
    return CanonicalEvent.model_validate(payload).as_payload()


def put(
    store, *payloads: dict, source: str = "shopify", shop: str = "demo.myshopify.com"
) -> list[int]:
    """Store payloads in the inbox as intake would (each a distinct delivery of ``shop``)."""
    with transaction(store) as session:
        rows = [
            InboxEvent(
                source=source,
                dedupe_key=f"test:{next(_dedupe)}",
                event_type=p["type"],
                shop=shop,
                subject_id=(p.get("order") or p.get("customer") or {}).get("external_id"),
                occurred_at=at(p["occurred_at"]) if "occurred_at" in p else None,
                payload=p,
            )
            for p in payloads
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def process(
    store,
    *,
    now: datetime,
    campaigns: CampaignConfig | None = None,
    loyalty: LoyaltyConfig | None = None,
    worker: str = "test",
) -> InboxSummary:
    """Process the inbox as the processing DAG does, at ``now``, with the shipped campaigns
    unless others are given (and loyalty only when a config is)."""
    return process_inbox(
        store,
        campaigns or load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml"),
        worker=worker,
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: now,
        loyalty=loyalty,
    )


def touchpoints(store) -> list[tuple]:
    """(campaign, step, channel, due_at, status, reason) of every touchpoint, in a stable order."""
    with store() as session:
        rows = session.scalars(
            select(Touchpoint).order_by(
                Touchpoint.campaign_id, Touchpoint.step, Touchpoint.channel, Touchpoint.subject_key
            )
        ).all()
        return [
            (t.campaign_id, t.step, t.channel.value, t.due_at, t.status.value, t.reason)
            for t in rows
        ]


def vip_shop_orders() -> list[dict]:
    """Paid orders of six customers: c-0 has six large ones (a VIP), the others one small one."""
    events = []
    for n in range(6):
        customer = f"c-{n}"
        big = n == 0
        for k in range(6 if big else 1):
            day = f"2026-03-0{k + 1}T10:00:00+00:00"
            events.append(
                order_event(
                    "order.paid",
                    day,
                    order_id=f"{n}-{k}",
                    customer_id=customer,
                    email=f"{customer}@example.com",
                    total="600.00" if big else "40.00",
                    placed_at=day,
                )
            )
    return events


def claimed_ids(session, **claim) -> list[int]:
    """The ids of the inbox rows one claim takes (``claim_inbox_rows``' arguments)."""
    return [row.id for row in claim_inbox_rows(session, **claim)]
