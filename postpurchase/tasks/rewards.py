"""What the loyalty maintenance DAG's rewards task calls: complete or refund pending
redemptions, then expire unused codes. Returns the summary (the task's XCom and log)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from postpurchase.airflow_glue.connections import connection_fields
from postpurchase.loyalty.config import load_loyalty_config, loyalty_config_path
from postpurchase.rewards.bonuses import give_birthday_points
from postpurchase.rewards.configured import configured_redeemer
from postpurchase.rewards.lifecycle import complete_pending, expire_codes
from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import transaction

log = logging.getLogger(__name__)


def settle_rewards(
    default_config: Path, *, settings: Settings | None = None, now: datetime | None = None
) -> str:
    """Settle pending redemptions (each in its own transactions, with platform calls between)
    and expire codes past their end. Safe to re-run: settled rows are skipped."""
    config = load_loyalty_config(loyalty_config_path(default_config))
    settings = settings or load_settings()
    moment = now or datetime.now(UTC)
    redeemer = configured_redeemer(settings, config, connection=connection_fields)
    try:
        pending = complete_pending(redeemer, now=moment, older_than=settings.pending_after)
    finally:
        redeemer.close()
    with transaction(redeemer.store) as session:
        expired = expire_codes(session, config=config, now=moment)
        birthdays = give_birthday_points(session, config=config, today=moment.date())
    summary = f"{pending}; {expired}; birthday points for {birthdays} customer(s)"
    log.info("rewards maintenance: %s", summary)
    return summary
