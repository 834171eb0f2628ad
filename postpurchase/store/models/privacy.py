"""Privacy tables (postpurchase/privacy): data subject requests and their fulfilment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from postpurchase.store.columns import BigId, Json
from postpurchase.store.models.base import Base


class PrivacyRequest(Base):
    """A request to export or erase a customer's data (or all of a shop's), and its outcome.

    ``subject`` names what the request is about without personal data: a platform customer id
    (``shopify:191167``), an engine customer id (``customer:42``) or a shop domain. ``result``
    says what was done (counts, the export's file); ``fulfilled_at`` is None while it waits.
    """

    __tablename__ = "privacy_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # export, erase, erase_shop
    origin: Mapped[str] = mapped_column(String(32))  # shopify, cli
    shop: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    inbox_event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[datetime]
    fulfilled_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
