"""Constants and signed links shared by the review tests."""

from __future__ import annotations

from datetime import UTC, datetime

from postpurchase.messages.tokens import LinkClaim, sign

BASE = "https://hooks.shop.example.com/postpurchase"
SECRET = "review-test-signing-secret"
SENT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def review_link(customer_id: int, touchpoint_id: int) -> str:
    return "/r/" + sign(SECRET.encode(), LinkClaim("review", customer_id, touchpoint_id))
