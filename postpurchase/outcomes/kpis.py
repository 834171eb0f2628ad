"""The shop's own numbers, computed from what is stored (a handful of grouped queries).

- repeat purchase rate: of customers with a paid order, the share with two or more; and per
  cohort (month of the first paid order) the share who paid again within 30, 60 and 90 days
  of the first, counted only over customers whose first order is at least that old;
- median days to the second paid order;
- CSAT: share of delivery check-in answers that are 4 or 5 (of 1-5);
- NPS: only when 0-10 answers are stored (the check-in asks 1-5, so none are today);
- review rate: orders reviewed after a review request was sent, per order sent one;
- loyalty points outstanding (the ledger's sum), their value when ``outcomes.point_value``
  is set, and customers per tier.

Paid means paid and not cancelled, as everywhere in outcomes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, func, select, text, true
from sqlalchemy.orm import Session

from postpurchase.outcomes.sql import Dialect
from postpurchase.store.columns import UtcDateTime
from postpurchase.store.models import (
    Customer,
    CustomerTier,
    LoyaltyLedgerEntry,
    Order,
    SurveyResponse,
    Touchpoint,
    TouchpointStatus,
)

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Kpis:
    repeat_purchase_rate: float | None
    median_days_to_second_order: float | None
    csat: float | None
    nps: float | None
    review_rate: float | None
    points_outstanding: int
    points_value: str | None  # Decimal as text: JSON keeps every digit
    customers: int
    cohorts: list[dict[str, Any]] = field(default_factory=list)
    tiers: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ranked_sql(d: Dialect, shop: str | None) -> str:
    # Each customer's first and second paid order, one row per customer (of ``:shop``).
    of_shop = "AND shop = :shop" if shop is not None else ""
    return f"""
WITH paid AS (
    SELECT customer_id, paid_at,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY paid_at, id) AS n
    FROM orders
    WHERE customer_id IS NOT NULL AND paid_at IS NOT NULL AND cancelled_at IS NULL {of_shop}
)
SELECT f.customer_id, f.paid_at AS first_at,
       {d.ms("s.paid_at")} - {d.ms("f.paid_at")} AS gap
FROM paid f LEFT JOIN paid s ON s.customer_id = f.customer_id AND s.n = 2
WHERE f.n = 1
"""


def _rows(session: Session, sql: str, now: datetime, shop: str | None) -> list[dict[str, Any]]:
    statement = text(sql).bindparams(bindparam("now", type_=UtcDateTime()))
    values = {"now": now, **({"shop": shop} if shop is not None else {})}
    return [dict(row) for row in session.execute(statement, values).mappings()]


def _cohorts(session: Session, d: Dialect, now: datetime, shop: str | None) -> list[dict[str, Any]]:
    age = f"{d.ms(':now')} - {d.ms('r.first_at')}"
    parts = []
    for days in (30, 60, 90):
        old = f"{age} >= {days * _DAY_MS}"
        parts.append(f"SUM(CASE WHEN {old} THEN 1 ELSE 0 END) AS old{days}")
        parts.append(
            f"SUM(CASE WHEN {old} AND r.gap IS NOT NULL AND r.gap <= {days * _DAY_MS} "
            f"THEN 1 ELSE 0 END) AS again{days}"
        )
    month = f"substr({d.day('r.first_at')}, 1, 7)"
    sql = (
        f"SELECT {month} AS cohort, COUNT(*) AS customers, {', '.join(parts)} "
        f"FROM ({_ranked_sql(d, shop)}) r GROUP BY {month} ORDER BY {month}"
    )
    cohorts = []
    for row in _rows(session, sql, now, shop):
        entry: dict[str, Any] = {"cohort": row["cohort"], "customers": int(row["customers"])}
        for days in (30, 60, 90):
            aged = int(row[f"old{days}"] or 0)
            again = int(row[f"again{days}"] or 0)
            entry[f"repeat_{days}d"] = round(again / aged, 4) if aged else None
        cohorts.append(entry)
    return cohorts


def _median_gap_days(session: Session, d: Dialect, shop: str | None) -> float | None:
    gaps = f"SELECT r.gap FROM ({_ranked_sql(d, shop)}) r WHERE r.gap IS NOT NULL"
    of_shop = {"shop": shop} if shop is not None else {}
    count = session.execute(text(f"SELECT COUNT(*) FROM ({gaps}) g"), of_shop).scalar_one()
    if not count:
        return None
    # the middle one or two, without a median function (SQLite has none)
    middle = session.execute(
        text(f"SELECT g.gap FROM ({gaps}) g ORDER BY g.gap LIMIT :n OFFSET :skip"),
        {"n": 2 - count % 2, "skip": (count - 1) // 2, **of_shop},
    ).scalars()
    values = [float(v) for v in middle]
    return round(sum(values) / len(values) / _DAY_MS, 2)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def shop_kpis(
    session: Session,
    *,
    now: datetime,
    point_value: Decimal | None = None,
    shop: str | None = None,
) -> Kpis:
    """The KPIs as of ``now``, of every shop together or of ``shop`` alone."""
    d = Dialect(session.get_bind().dialect.name)
    paid = Order.paid_at.is_not(None) & Order.cancelled_at.is_(None)
    # one shop's: its orders and touchpoints, and what belongs to its customers
    order_shop = Order.shop == shop if shop is not None else true()
    customers_of_shop = select(Customer.id).where(Customer.shop == shop).scalar_subquery()

    def of_shop(customer_id: Any) -> Any:
        return customer_id.in_(customers_of_shop) if shop is not None else true()

    per_customer = (
        select(Order.customer_id, func.count().label("orders"))
        .where(paid, Order.customer_id.is_not(None), order_shop)
        .group_by(Order.customer_id)
        .subquery()
    )
    customers, repeaters = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((per_customer.c.orders >= 2, 1), else_=0)), 0),
        ).select_from(per_customer)
    ).one()
    answers, happy = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((SurveyResponse.score >= 4, 1), else_=0)), 0),
        ).where(of_shop(SurveyResponse.customer_id))
    ).one()
    first_request = (
        select(Touchpoint.order_id, func.min(Touchpoint.sent_at).label("sent_at"))
        .where(
            Touchpoint.campaign_id == "review_request",
            Touchpoint.status == TouchpointStatus.SENT,
            Touchpoint.order_id.is_not(None),
            Touchpoint.shop == shop if shop is not None else true(),
        )
        .group_by(Touchpoint.order_id)
        .subquery()
    )
    requested, reviewed = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((Order.reviewed_at >= first_request.c.sent_at, 1), else_=0)), 0
            ),
        ).select_from(first_request.join(Order, Order.id == first_request.c.order_id))
    ).one()
    points = int(
        session.execute(
            select(func.coalesce(func.sum(LoyaltyLedgerEntry.points), 0)).where(
                of_shop(LoyaltyLedgerEntry.customer_id)
            )
        ).scalar_one()
    )
    tiers = dict(
        session.execute(
            select(CustomerTier.tier, func.count())
            .where(of_shop(CustomerTier.customer_id))
            .group_by(CustomerTier.tier)
            .order_by(CustomerTier.tier)
        ).all()
    )
    return Kpis(
        repeat_purchase_rate=_rate(int(repeaters), int(customers)),
        median_days_to_second_order=_median_gap_days(session, d, shop),
        csat=_rate(int(happy), int(answers)),
        nps=None,  # no 0-10 answers are stored yet
        review_rate=_rate(int(reviewed), int(requested)),
        points_outstanding=points,
        points_value=str(points * point_value) if point_value is not None else None,
        customers=int(customers),
        cohorts=_cohorts(session, d, now, shop),
        tiers={str(k): int(v) for k, v in tiers.items()},
    )
