"""Simulated outcomes for the demo: what a week after the run could look like.

The demo sends to the outbox, so no provider ever reports a delivery, an open or a click, and
no customer buys again. To show the outcome report, this adds, for the messages the run sent,
provider events (delivered, bounces, opens, clicks by people, clicks by mail scanners, a rare
spam complaint) and repeat orders, drawn from a fixed seed. Everything it writes is marked:
events come from provider ``simulated``, orders from source ``simulated``, and the summary
says so. It is never called outside ``postpurchase run``.

Treatment customers buy a little more often than held-out ones, so the uplift line has
something to measure; with a few hundred orders it rarely reaches significance, as in life.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postpurchase.store.models import (
    Channel,
    MessageEvent,
    Order,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.store.statements import insert_ignoring_conflicts

SIMULATED = "simulated"
# Until when the simulation runs: the outcome summary is "as of" this long after the run.
HORIZON = timedelta(days=7)
_BASKETS = [Decimal(v) for v in ("45.50", "59.90", "75.00", "89.00", "129.00", "149.99")]


@dataclass(frozen=True)
class Simulated:
    events: int
    orders: int


def _event(tp: Touchpoint, kind: str, at: datetime, **detail: Any) -> dict[str, Any]:
    return {
        "provider": SIMULATED,
        "provider_event_id": f"{tp.id}:{kind}:{detail.get('url', '')}:{at.timestamp()}",
        "touchpoint_id": tp.id,
        "provider_message_id": tp.provider_message_id,
        "event": kind,
        "occurred_at": at,
        "detail": {"simulated": True, **detail},
    }


def _order(tp: Touchpoint, at: datetime, rng: random.Random, currency: str) -> dict[str, Any]:
    total = rng.choice(_BASKETS)
    return {
        "source": SIMULATED,
        "shop": tp.shop,  # the customer's shop buys again, not the default one
        "external_id": f"sim-{tp.id}",
        "customer_id": tp.customer_id,
        "name": f"#S{tp.id}",
        "currency": currency,
        "subtotal": total,
        "total": total,
        "financial_status": "paid",
        "placed_at": at,
        "paid_at": at,
    }


def simulate_outcomes(session: Session, *, now: datetime, seed: int = 2026) -> Simulated:
    """Add simulated events for sent messages, and orders after first messages due by
    ``now`` + ``HORIZON`` (in both arms alike, plus some after clicks)."""
    rng = random.Random(seed)
    currency = session.scalar(
        select(Order.currency).group_by(Order.currency).order_by(func.count().desc()).limit(1)
    )
    touchpoints = session.scalars(
        select(Touchpoint)
        .where(
            (Touchpoint.status == TouchpointStatus.SENT)
            | ((Touchpoint.step == 0) & (Touchpoint.due_at <= now + HORIZON))
        )
        .order_by(Touchpoint.id)
    ).all()
    events: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    money = currency or "USD"
    for tp in touchpoints:
        # Some customers buy again anyway, in both arms alike, from when the message was due.
        buys_anyway = tp.step == 0 and rng.random() < 0.05
        if buys_anyway:
            orders.append(_order(tp, tp.due_at + timedelta(hours=rng.randint(6, 110)), rng, money))
        if tp.status != TouchpointStatus.SENT:
            continue
        sent = tp.sent_at or tp.due_at
        if rng.random() < 0.02:
            events.append(_event(tp, "bounce", sent + timedelta(seconds=20)))
            continue
        delivered = sent + timedelta(seconds=rng.randint(5, 90))
        events.append(_event(tp, "delivered", delivered))
        url = "https://nordic-home.example.com/products"
        if tp.channel == Channel.EMAIL and rng.random() < 0.08:  # a mail scanner's pass
            events.append(_event(tp, "click", delivered + timedelta(seconds=2), url=url))
        if tp.channel == Channel.EMAIL and rng.random() < 0.5:
            events.append(_event(tp, "open", delivered + timedelta(minutes=rng.randint(5, 600))))
        if rng.random() < 0.002:
            events.append(_event(tp, "spamreport", delivered + timedelta(hours=3)))
        if rng.random() < (0.15 if tp.channel == Channel.EMAIL else 0.10):
            at = delivered + timedelta(minutes=rng.randint(20, 2000))
            events.append(_event(tp, "click", at, url=url, method="GET"))
            # the message's own effect: a clicker sometimes buys (once per touchpoint)
            if tp.step == 0 and not buys_anyway and rng.random() < 0.3:
                orders.append(_order(tp, at + timedelta(minutes=rng.randint(5, 2000)), rng, money))
    return Simulated(
        insert_ignoring_conflicts(session, MessageEvent, events),
        insert_ignoring_conflicts(session, Order, orders),
    )
