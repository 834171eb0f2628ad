"""Constants and signed links shared by the survey tests."""

from __future__ import annotations

from datetime import UTC, datetime

from postpurchase.messages.tokens import LinkClaim, sign

BASE = "https://hooks.shop.example.com/postpurchase"
SECRET = "survey-test-signing-secret"
WEBHOOK_SECRET = "helpdesk-shared-secret"
SENT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def link(purpose: str, customer_id: int, touchpoint_id: int, score: int | None = None) -> str:
    prefix = {"nps": "/n/", "survey": "/s/", "review": "/r/"}[purpose]
    return prefix + sign(SECRET.encode(), LinkClaim(purpose, customer_id, touchpoint_id, score))
