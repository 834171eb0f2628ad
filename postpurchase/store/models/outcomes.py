"""Outcome tables (postpurchase/outcomes): small tables the measure_outcomes DAG refreshes,
and the campaigns paused by the deliverability guard.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from postpurchase.store.columns import BigId
from postpurchase.store.models.base import Base


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
    shop: Mapped[str] = mapped_column(Text, server_default="", default="")  # the touchpoint's
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
    """A campaign's funnel for the messages due on one (UTC) day, per shop, variant and arm."""

    __tablename__ = "campaign_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop: Mapped[str] = mapped_column(Text, primary_key=True, server_default="", default="")
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
