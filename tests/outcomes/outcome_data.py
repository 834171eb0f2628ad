"""Rows for outcome tests, written with bulk inserts as intake and dispatch would leave them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from postpurchase.store.models import (
    Channel,
    Customer,
    MessageEvent,
    Order,
    OrderRefund,
    Touchpoint,
    TouchpointStatus,
)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def customers(session: Session, count: int, *, start: int = 1) -> list[int]:
    session.execute(
        insert(Customer),
        [
            {
                "source": "shopify",
                "external_id": f"c{n}",
                "email": f"customer{n}@example.com",
                "phone": f"+1415555{n:04d}",
                "first_name": "Ana",
            }
            for n in range(start, start + count)
        ],
    )
    return list(
        session.scalars(
            select(Customer.id)
            .where(Customer.external_id.in_([f"c{n}" for n in range(start, start + count)]))
            .order_by(Customer.id)
        )
    )


def order(
    session: Session,
    customer_id: int,
    paid_at: datetime | None,
    total: str = "80.00",
    *,
    refunded: str = "0",
    placed_at: datetime | None = None,
) -> int:
    external = f"o{customer_id}-{(paid_at or placed_at or T0).timestamp()}-{total}"
    row = Order(
        source="shopify",
        external_id=external,
        customer_id=customer_id,
        currency="EUR",
        total=Decimal(total),
        refunded_amount=Decimal(refunded),
        financial_status="paid" if paid_at else "pending",
        placed_at=placed_at or paid_at,
        paid_at=paid_at,
    )
    session.add(row)
    session.flush()
    if Decimal(refunded):
        session.add(
            OrderRefund(
                order_id=row.id,
                external_id=f"r{row.id}",
                amount=Decimal(refunded),
                currency="EUR",
                refunded_at=(paid_at or T0) + timedelta(days=2),
            )
        )
    return row.id


def touchpoint(
    session: Session,
    customer_id: int,
    *,
    campaign: str = "review_request",
    sent_at: datetime | None = T0,
    arm: str = "treatment",
    variant: str | None = None,
    channel: Channel = Channel.EMAIL,
    step: int = 0,
    order_id: int | None = None,
    due_at: datetime | None = None,
) -> int:
    held = arm == "holdout"
    row = Touchpoint(
        subject_key=f"order:{order_id or customer_id}:{sent_at or T0}",
        campaign_id=campaign,
        step=step,
        channel=channel,
        customer_id=customer_id,
        order_id=order_id,
        due_at=due_at or sent_at or T0,
        status=TouchpointStatus.SKIPPED if held or sent_at is None else TouchpointStatus.SENT,
        reason="held out (control group)" if held else None,
        sent_at=None if held else sent_at,
        provider_message_id=None if held else f"msg-{customer_id}-{campaign}-{step}",
        arm=arm,
        variant=variant,
    )
    session.add(row)
    session.flush()
    return row.id


def event(
    session: Session,
    touchpoint_id: int,
    kind: str,
    at: datetime,
    *,
    provider: str = "sendgrid",
    **detail: Any,
) -> None:
    session.execute(
        insert(MessageEvent),
        [
            {
                "provider": provider,
                "provider_event_id": f"{touchpoint_id}:{kind}:{at.isoformat()}:{detail}",
                "touchpoint_id": touchpoint_id,
                "event": kind,
                "occurred_at": at,
                "detail": detail,
            }
        ],
    )
