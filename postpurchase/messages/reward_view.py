"""What reward messages show (postpurchase.rewards): the customer's live codes, the code or
expiring points a message is about, and the samples previews and template checks use."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from postpurchase.messages.reward_subjects import (
    expiring_of,
    expiring_subject,
    redemption_of,
    reward_subject,
)
from postpurchase.store.membership import among, among_parameter, rows_among
from postpurchase.store.models import Redemption, RedemptionStatus


def live_codes(session: Session, customer_ids: Collection[int]) -> dict[int, list[dict[str, Any]]]:
    """Issued, unused reward codes per customer, newest first, as templates show them."""
    found: dict[int, list[dict[str, Any]]] = {}
    rows = rows_among(
        session,
        _LIVE_CODES,
        lambda statement: statement.where(among(session, Redemption.customer_id, customer_ids)),
        _PG_LIVE_CODES,
        {"ids": customer_ids},
    )
    for customer_id, code_id, code, title, description, expires_at in rows:
        found.setdefault(customer_id, []).append(
            {
                "id": code_id,
                "code": code,
                "title": title,
                "description": description,
                # in UTC, as the store's column gives it (PostgreSQL's rows: the session's zone)
                "expires_at": expires_at.astimezone(UTC),
            }
        )
    return found


# Built once; on PostgreSQL run by psycopg (``rows_among``): read for every dispatch chunk,
# SQLAlchemy building, compiling and running it (and loading ORM rows) cost more than the
# few codes it finds.
_REDEMPTION = cast(Table, Redemption.__table__).c
_LIVE_CODES = (
    select(
        _REDEMPTION.customer_id,
        _REDEMPTION.id,
        _REDEMPTION.code,
        _REDEMPTION.title,
        _REDEMPTION.description,
        _REDEMPTION.expires_at,
    )
    .where(_REDEMPTION.status == RedemptionStatus.ISSUED)
    .order_by(_REDEMPTION.id.desc())
)
_PG_LIVE_CODES = _LIVE_CODES.where(among_parameter("postgresql", _REDEMPTION.customer_id, "ids"))


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
