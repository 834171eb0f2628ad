"""The shop's KPIs by ISO week over the last twelve weeks, for the KPIs page's charts:
repeat purchase rate, paid orders, CSAT and points outstanding.

They scan every paid order, so the hourly measure_outcomes run computes them and keeps them
as the ``kpis_weekly`` snapshot next to today's ``kpis``; the page reads the snapshot
(``latest_kpis``) and computes them itself only before the first run. Grouped by day in SQL
(``outcomes.sql.Dialect.day``) and folded into weeks here: a handful of rows per day.

One shop's series (the pages' shop choice) are computed when asked: the snapshots are every
shop's together.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal_column, select, true
from sqlalchemy.orm import Session

from postpurchase.outcomes.kpis import shop_kpis
from postpurchase.outcomes.sql import Dialect
from postpurchase.store.models import (
    Customer,
    LoyaltyLedgerEntry,
    Order,
    OutcomeSnapshot,
    SurveyResponse,
)

WEEKS = 12


def _week(day: str) -> date:
    d = date.fromisoformat(day)
    return d - timedelta(days=d.weekday())  # the Monday


def _weeks(now: datetime) -> list[date]:
    last = _week(now.date().isoformat())
    return [last - timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]


def _by_day(session: Session, column: Any, *values: Any, where: Any, since: datetime) -> list[Any]:
    day: Any = literal_column(Dialect(session.get_bind().dialect.name).day(column.key))
    return list(
        session.execute(
            select(day.label("day"), *values).where(where, column >= since).group_by(day)
        )
    )


Series = dict[str, list[tuple[str, float | None]]]


def weekly_series(session: Session, *, now: datetime, shop: str | None = None) -> Series:
    """Per week (label "Mon dd"): repeat purchase rate (share of paid orders from customers who
    had paid before), CSAT (share of 4-5 answers), and points outstanding at the week's end;
    of every shop, or of ``shop``'s orders and customers alone."""
    weeks = _weeks(now)
    since = datetime.combine(weeks[0], datetime.min.time(), tzinfo=now.tzinfo)
    paid = Order.paid_at.is_not(None) & Order.cancelled_at.is_(None)
    customers_of_shop = select(Customer.id).where(Customer.shop == shop).scalar_subquery()

    def of_shop(customer_id: Any) -> Any:
        return true() if shop is None else customer_id.in_(customers_of_shop)

    if shop is not None:
        paid = paid & (Order.shop == shop)
    first = (
        select(Order.customer_id, func.min(Order.paid_at).label("first_paid"))
        .where(paid)
        .group_by(Order.customer_id)
        .subquery()
    )
    orders: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    day: Any = literal_column(Dialect(session.get_bind().dialect.name).day("orders.paid_at"))
    for d, total, repeat in session.execute(
        select(
            day,
            func.count(),
            func.sum(case((Order.paid_at > first.c.first_paid, 1), else_=0)),
        )
        .join(first, first.c.customer_id == Order.customer_id)
        .where(paid, Order.paid_at >= since)
        .group_by(day)
    ):
        orders[_week(d)][0] += int(total)
        orders[_week(d)][1] += int(repeat or 0)
    answers: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for d, total, happy in _by_day(
        session,
        SurveyResponse.responded_at,
        func.count(),
        func.sum(case((SurveyResponse.score >= 4, 1), else_=0)),
        where=SurveyResponse.score.is_not(None) & of_shop(SurveyResponse.customer_id),
        since=since,
    ):
        answers[_week(d)][0] += int(total)
        answers[_week(d)][1] += int(happy or 0)
    before = session.scalar(
        select(func.coalesce(func.sum(LoyaltyLedgerEntry.points), 0)).where(
            LoyaltyLedgerEntry.created_at < since, of_shop(LoyaltyLedgerEntry.customer_id)
        )
    )
    moved: dict[date, int] = defaultdict(int)
    for d, points in _by_day(
        session,
        LoyaltyLedgerEntry.created_at,
        func.sum(LoyaltyLedgerEntry.points),
        where=of_shop(LoyaltyLedgerEntry.customer_id),
        since=since,
    ):
        moved[_week(d)] += int(points or 0)
    outstanding: list[tuple[str, float | None]] = []
    running = int(before or 0)
    for week in weeks:
        running += moved[week]
        outstanding.append((week.strftime("%b %d"), float(running)))
    return {
        "repeat": [(w.strftime("%b %d"), _share(*orders[w][::-1])) for w in weeks],
        "csat": [(w.strftime("%b %d"), _share(*answers[w][::-1])) for w in weeks],
        "points": outstanding,
        "orders": [(w.strftime("%b %d"), float(orders[w][0])) for w in weeks],  # never None
    }


def _share(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def latest_kpis(
    session: Session, *, now: datetime, shop: str | None = None
) -> tuple[dict[str, Any], Series, datetime | None]:
    """Today's KPIs and the weekly series from the last outcomes refresh, with its time;
    computed now (and None for the time) before the first refresh, and for ``shop`` alone."""
    if shop is not None:
        return (
            shop_kpis(session, now=now, shop=shop).as_dict(),
            weekly_series(session, now=now, shop=shop),
            None,
        )
    today = session.get(OutcomeSnapshot, "kpis")
    weekly = session.get(OutcomeSnapshot, "kpis_weekly")
    if today is not None and weekly is not None:
        series = {k: [(str(w), v) for w, v in rows] for k, rows in weekly.data.items()}
        return today.data, series, today.refreshed_at
    return shop_kpis(session, now=now).as_dict(), weekly_series(session, now=now), None
