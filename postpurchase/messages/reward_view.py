"""What reward messages show (postpurchase.rewards): the customer's live codes, the code or
expiring points a message is about, and the samples previews and template checks use."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.messages.reward_subjects import (
    expiring_of,
    expiring_subject,
    redemption_of,
    reward_subject,
)
from postpurchase.store.membership import among
from postpurchase.store.models import Redemption, RedemptionStatus


def live_codes(session: Session, customer_ids: Collection[int]) -> dict[int, list[dict[str, Any]]]:
    """Issued, unused reward codes per customer, newest first, as templates show them."""
    found: dict[int, list[dict[str, Any]]] = {}
    rows = session.scalars(
        select(Redemption)
        .where(
            among(session, Redemption.customer_id, customer_ids),
            Redemption.status == RedemptionStatus.ISSUED,
        )
        .order_by(Redemption.id.desc())
    )
    for row in rows:
        found.setdefault(row.customer_id, []).append(
            {
                "id": row.id,
                "code": row.code,
                "title": row.title,
                "description": row.description,
                "expires_at": row.expires_at,
            }
        )
    return found


# What reward messages show in previews and template checks.
SAMPLE_CODE: dict[str, Any] = {
    "id": 7,
    "code": "PP-7KQ9-MX4T-2B",
    "title": "$5 off your next order",
    "description": "5.00 USD off on orders of 25.00 USD or more",
    "expires_at": datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
}
SAMPLE_SUBJECTS = {
    "reward_issued": reward_subject(7),
    "points_expiring": expiring_subject(0, date(2026, 12, 14), 320),
}


def reward_facts(subject_key: str, codes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``loyalty.reward`` (the code a reward.issued message is about) and
    ``loyalty.expiring`` (points and date of a points.expiring message), from the subject;
    ``loyalty.codes``: every live code."""
    facts: dict[str, Any] = {"codes": list(codes), "reward": None, "expiring": None}
    redemption = redemption_of(subject_key)
    if redemption is not None:
        facts["reward"] = next((c for c in codes if c["id"] == redemption), None)
    expiring = expiring_of(subject_key)
    if expiring is not None:
        # Noon UTC: the same calendar day in the customer's zone, wherever they are.
        on = datetime(expiring[0].year, expiring[0].month, expiring[0].day, 12, tzinfo=UTC)
        facts["expiring"] = {"date": on, "points": expiring[1]}
    return facts
