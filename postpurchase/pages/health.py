"""The health page for ops: is the engine keeping up, and what is stuck.

Inbox lag (age of the oldest event not yet processed) and events per minute over the last
hour; failed events grouped by reason, each group retryable; sends whose outcome is
``unknown`` (never retried blind: someone settles them); error rates per channel over a day;
rejected webhooks per route and reason over a week; each DAG's last run and whether the inbox
asset still wakes the processing DAG. Every figure is one grouped query on an indexed column.

With one shop chosen (``shop_choice``), the inbox and send figures are that shop's and a retry
puts back that shop's failed events only; rejected webhooks and the DAGs stay the engine's
(a refused webhook proved no shop, and every shop shares the DAGs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select, text, true, update
from sqlalchemy.orm import Session

from postpurchase.pages.airflow_runs import AirflowState
from postpurchase.pages.auth import Actor, Reader
from postpurchase.pages.charts import bar_chart
from postpurchase.pages.context import PagesContext, back_to, pages_context
from postpurchase.pages.rendering import page
from postpurchase.pages.shop_choice import chosen_key, shop_choice
from postpurchase.store.database import transaction
from postpurchase.store.models import (
    ClaimStatus,
    InboxEvent,
    RejectedWebhook,
    Touchpoint,
    TouchpointStatus,
)
from postpurchase.store.page_actions import record_action

router = APIRouter()
_WAKE_GRACE = timedelta(minutes=2)  # the watcher polls every few seconds; a run follows
_COMMIT_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Health:
    pending: int
    oldest_pending_at: datetime | None
    per_minute: list[tuple[datetime, int]]  # the last hour, oldest first, empty minutes kept
    failed: list[dict[str, Any]]  # reason, events, last_at
    unknown: list[dict[str, Any]]  # the oldest unknown sends
    unknown_total: int
    channels: list[dict[str, Any]]  # channel, sent, failed, unknown, error_rate
    rejections: list[dict[str, Any]]  # route, reason, status_code, count, last_at
    newest_received_at: datetime | None


def _minute_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return "floor(date_part('epoch', received_at) / 60)"
    return "CAST((julianday(received_at) - 2440587.5) * 1440 AS INTEGER)"


def _first_id_received_since(session: Session, moment: datetime) -> int:
    """The smallest inbox id received at or after ``moment``, found by bisecting the primary
    key (rows are numbered as they arrive; ``received_at`` has no index of its own, and intake
    should not pay for one): a score of point lookups instead of a scan of the inbox."""
    low, high = session.execute(select(func.min(InboxEvent.id), func.max(InboxEvent.id))).one()
    if high is None:
        return 0
    high += 1
    while low < high:
        middle = (low + high) // 2
        at = session.scalar(
            select(InboxEvent.received_at)
            .where(InboxEvent.id >= middle)
            .order_by(InboxEvent.id)
            .limit(1)
        )
        if at is not None and at < moment:
            low = middle + 1
        else:
            high = middle
    return int(low)


def _per_minute(session: Session, now: datetime, shop: str | None) -> list[tuple[datetime, int]]:
    start = (now - timedelta(minutes=59)).replace(second=0, microsecond=0)
    # rows committed a little out of order stay in: the time condition decides
    floor = _first_id_received_since(session, start - _COMMIT_SLACK)
    minute = _minute_sql(session.get_bind().dialect.name)
    of_shop = "" if shop is None else "AND COALESCE(shop, '') = :shop "
    counted = session.execute(
        text(
            f"SELECT {minute} AS m, count(*) FROM inbox_events "
            f"WHERE id >= :floor AND received_at >= :start {of_shop}GROUP BY m"
        ),
        {"floor": floor, "start": start, **({} if shop is None else {"shop": shop})},
    ).all()
    by_minute = {int(m): int(n) for m, n in counted}
    first = int(start.timestamp() // 60)
    return [(start + timedelta(minutes=i), by_minute.get(first + i, 0)) for i in range(60)]


def _inbox_of(shop: str | None) -> Any:
    # an event without a shop (generic, internal) is the default shop's
    return true() if shop is None else func.coalesce(InboxEvent.shop, "") == shop


def _touchpoints_of(shop: str | None) -> Any:
    return true() if shop is None else Touchpoint.shop == shop


def health_facts(session: Session, *, now: datetime, shop: str | None = None) -> Health:
    """Everything the health page shows about the engine's own tables, as of ``now``: the
    inbox and sends of every shop, or of ``shop`` alone."""
    waiting = InboxEvent.status.in_([ClaimStatus.PENDING, ClaimStatus.CLAIMED])
    pending, oldest = session.execute(
        select(func.count(), func.min(InboxEvent.received_at)).where(waiting, _inbox_of(shop))
    ).one()
    failed = [
        {"reason": reason or "(no reason recorded)", "events": n, "last_at": last}
        for reason, n, last in session.execute(
            select(InboxEvent.last_error, func.count(), func.max(InboxEvent.received_at))
            .where(InboxEvent.status == ClaimStatus.FAILED, _inbox_of(shop))
            .group_by(InboxEvent.last_error)
            .order_by(func.count().desc())
            .limit(20)
        )
    ]
    unknown_rows = session.execute(
        select(Touchpoint.id, Touchpoint.campaign_id, Touchpoint.channel, Touchpoint.updated_at)
        .where(Touchpoint.status == TouchpointStatus.UNKNOWN, _touchpoints_of(shop))
        .order_by(Touchpoint.id)
        .limit(20)
    ).all()
    unknown_total = session.scalar(
        select(func.count()).where(
            Touchpoint.status == TouchpointStatus.UNKNOWN, _touchpoints_of(shop)
        )
    )
    return Health(
        pending=int(pending),
        oldest_pending_at=oldest,
        per_minute=_per_minute(session, now, shop),
        failed=failed,
        unknown=[
            {"id": i, "campaign": c, "channel": str(ch), "at": at} for i, c, ch, at in unknown_rows
        ],
        unknown_total=int(unknown_total or 0),
        channels=_channel_rates(session, now - timedelta(days=1), now, shop),
        rejections=_rejections(session, now - timedelta(days=7)),
        newest_received_at=session.scalar(
            select(InboxEvent.received_at).order_by(InboxEvent.id.desc()).limit(1)
        ),
    )


def _channel_rates(
    session: Session, since: datetime, now: datetime, shop: str | None
) -> list[dict[str, Any]]:
    """Per channel, the outcomes of the sends that fell due between ``since`` and ``now`` (a
    range of the touchpoints' (status, due_at) index, whatever the table's size)."""
    finished = [TouchpointStatus.SENT, TouchpointStatus.FAILED, TouchpointStatus.UNKNOWN]
    counts: dict[str, dict[str, int]] = {}
    for channel_of, status, n in session.execute(
        select(Touchpoint.channel, Touchpoint.status, func.count())
        .where(
            Touchpoint.status.in_(finished),
            Touchpoint.due_at.between(since, now),
            _touchpoints_of(shop),
        )
        .group_by(Touchpoint.channel, Touchpoint.status)
    ):
        counts.setdefault(str(channel_of), {})[str(status)] = int(n)
    rows = []
    for channel, by_status in sorted(counts.items()):
        total = sum(by_status.values())
        errors = by_status.get("failed", 0) + by_status.get("unknown", 0)
        rows.append(
            {
                "channel": channel,
                "sent": by_status.get("sent", 0),
                "failed": by_status.get("failed", 0),
                "unknown": by_status.get("unknown", 0),
                "error_rate": errors / total if total else None,
            }
        )
    return rows


def _rejections(session: Session, since: datetime) -> list[dict[str, Any]]:
    seen = func.coalesce(RejectedWebhook.last_seen_at, RejectedWebhook.received_at)
    reason = func.coalesce(RejectedWebhook.reason_key, RejectedWebhook.reason)
    return [
        {"route": route, "reason": why, "status_code": code, "count": int(n), "last_at": last}
        for route, why, code, n, last in session.execute(
            select(
                RejectedWebhook.route,
                reason,
                func.max(RejectedWebhook.status_code),
                func.sum(RejectedWebhook.count),
                func.max(seen),
            )
            .where(seen >= since)
            .group_by(RejectedWebhook.route, reason)
            .order_by(func.sum(RejectedWebhook.count).desc())
            .limit(30)
        )
    ]


def wake_up_verdict(
    airflow: AirflowState, newest_received_at: datetime | None, now: datetime
) -> tuple[str, str]:
    """("ok" | "waiting" | "broken" | "unknown", what to tell ops) about the asset wake-up."""
    if airflow.unavailable:
        return "unknown", airflow.unavailable
    if newest_received_at is None:
        return "waiting", "nothing received yet: the first event will show whether it wakes"
    if (
        airflow.last_asset_event_at is not None
        and airflow.last_asset_event_at >= newest_received_at
    ):
        return "ok", "the newest event in the inbox woke the processing DAG"
    if now - newest_received_at < _WAKE_GRACE:
        return "waiting", "the newest event arrived moments ago; its wake-up is due"
    return (
        "broken",
        "events arrive but the inbox asset did not fire for the newest one: processing waits "
        "for its one-minute schedule (is the triggerer running?)",
    )


def retry_failed(session: Session, *, reason: str | None, shop: str | None = None) -> int:
    """Put the failed inbox events with this ``last_error`` (of every shop, or of ``shop``)
    back to pending; how many."""
    matches = InboxEvent.last_error.is_(None) if reason is None else InboxEvent.last_error == reason
    result = session.execute(
        update(InboxEvent)
        .where(InboxEvent.status == ClaimStatus.FAILED, matches, _inbox_of(shop))
        .values(
            status=ClaimStatus.PENDING,
            attempts=0,
            claimed_by=None,
            lease_until=None,
            last_error=None,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@router.get("/health", response_class=HTMLResponse)
def health_page(request: Request, user: Reader) -> HTMLResponse:
    context: PagesContext = pages_context(request)
    now = context.clock()
    shop = shop_choice(request, context.settings())
    with context.factory()() as session:
        facts = health_facts(session, now=now, shop=shop.key)
    airflow = context.airflow()
    verdict, explanation = wake_up_verdict(airflow, facts.newest_received_at, now)
    lag = now - facts.oldest_pending_at if facts.oldest_pending_at else None
    last_15 = sum(n for _, n in facts.per_minute[-15:]) / 15
    return page(
        request,
        "health.html",
        user=user,
        shop=shop,
        now=now,
        facts=facts,
        lag=lag,
        per_minute_now=last_15,
        chart=bar_chart(
            [(m.strftime("%H:%M"), n) for m, n in facts.per_minute],
            title="Events received per minute, last hour (UTC)",
        ),
        airflow=airflow,
        wake=verdict,
        wake_explanation=explanation,
    )


@router.post("/health/retry")
def retry_page(
    request: Request,
    user: Actor,
    reason: Annotated[str, Form()],
    why: Annotated[str, Form()] = "",
) -> RedirectResponse:
    context = pages_context(request)
    shop = chosen_key(request)
    stored_reason = None if reason == "(no reason recorded)" else reason
    if not why.strip():
        return back_to("../health", shop=shop, problem="say why, then retry")
    with transaction(context.factory()) as session:
        count = retry_failed(session, reason=stored_reason, shop=shop)
        detail: dict[str, Any] = {"last_error": stored_reason, "events": count}
        if shop is not None:
            detail["shop"] = shop
        record_action(
            session,
            user_name=user.name,
            action="retry_failed_events",
            subject="inbox:failed",
            reason=why.strip(),
            detail=detail,
            now=context.clock(),
        )
    return back_to("../health", shop=shop, notice=f"{count} failed event(s) back in the inbox")
