"""What the measure_outcomes DAG's task calls: refresh, snapshot the KPIs, guard, summarise.

One transaction: the tables a report reads change together. The summary (the run's note,
XCom and log) gives the headline numbers, the uplift verdicts and any campaign paused.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig, load_campaigns
from postpurchase.outcomes.guard import check_deliverability
from postpurchase.outcomes.kpis import shop_kpis
from postpurchase.outcomes.refresh import refresh_outcomes, shop_currency
from postpurchase.outcomes.report import build_report
from postpurchase.outcomes.weekly import weekly_series
from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import open_store, transaction
from postpurchase.store.models import OutcomeSnapshot

log = logging.getLogger(__name__)

# Each hourly run recomputes this much history: clicks and refunds keep arriving for weeks.
LOOKBACK = timedelta(days=90)


def _save_snapshot(session: Session, name: str, data: dict[str, object], now: datetime) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(OutcomeSnapshot).values(name=name, data=data, refreshed_at=now)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={"data": data, "refreshed_at": now}
        )
    )


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def measure_outcomes(
    session: Session, config: CampaignConfig, *, now: datetime, lookback: timedelta = LOOKBACK
) -> str:
    """Refresh, snapshot, guard; returns the summary."""
    counts = refresh_outcomes(session, config, since=now - lookback, now=now)
    kpis = shop_kpis(session, now=now, point_value=config.outcomes.point_value)
    _save_snapshot(session, "kpis", kpis.as_dict(), now)
    _save_snapshot(session, "kpis_weekly", dict(weekly_series(session, now=now)), now)
    # pages show money in it without scanning every order on each view
    _save_snapshot(session, "shop", {"currency": shop_currency(session)}, now)
    pauses = check_deliverability(session, config, now=now)
    report = build_report(session, since=now - lookback, now=now)
    sent = sum(r["sent"] for r in report["campaigns"])
    clicked = sum(r["clicked"] for r in report["campaigns"])
    converted = sum(r["converted"] for r in report["campaigns"])
    lines = [
        f"{counts.touchpoints} message(s) measured over {lookback.days} days: {sent} sent, "
        f"{clicked} clicked by people, {converted} order(s) attributed",
        *(f"{u['campaign']}: {u['verdict']}" for u in report["uplift"]),
        f"repeat purchase rate {_pct(kpis.repeat_purchase_rate)}, CSAT {_pct(kpis.csat)}, "
        f"review rate {_pct(kpis.review_rate)}, points outstanding {kpis.points_outstanding}",
    ]
    for pause in pauses:
        lines.append(f"PAUSED {pause.campaign_id}: {pause.reason}")
        log.warning("measure_outcomes: paused campaign %s: %s", pause.campaign_id, pause.reason)
    return "\n".join(lines)


def run_measure_outcomes(*, settings: Settings | None = None, now: datetime | None = None) -> str:
    """The measure_outcomes task: returns (and logs) the summary."""
    settings = settings or load_settings()
    config = load_campaigns(settings.campaigns_file)
    with transaction(open_store(settings)) as session:
        summary = measure_outcomes(session, config, now=now or datetime.now(UTC))
    log.info("measure_outcomes: %s", summary)
    return summary
