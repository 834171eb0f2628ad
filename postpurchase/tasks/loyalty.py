"""What the loyalty DAGs' tasks call: load config and settings, run one step, return a summary.

The summary is the task's return value (shown in the run's XCom) and is logged, so ops see
tier sizes and moves, or the points expired, in the run without opening the database.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from postpurchase.loyalty.config import load_loyalty_config, loyalty_config_path
from postpurchase.loyalty.expiry import expire_points
from postpurchase.loyalty.ledger import Ledger
from postpurchase.loyalty.tiers import refresh_segments
from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import open_store, transaction

log = logging.getLogger(__name__)


def refresh_tiers(
    default_config: Path, *, settings: Settings | None = None, now: datetime | None = None
) -> str:
    """The refresh_segments task: recompute tiers in one transaction; returns the summary."""
    config = load_loyalty_config(loyalty_config_path(default_config))
    with transaction(open_store(settings or load_settings())) as session:
        summary = refresh_segments(session, config=config, now=now or datetime.now(UTC))
    log.info("refresh_segments: %s", summary)
    return str(summary)


def apply_expiry(
    default_config: Path, *, settings: Settings | None = None, now: datetime | None = None
) -> str:
    """The loyalty_maintenance task: apply expiry, then check that no balance is negative.

    The check cannot fail by construction (writers cap every debit); when it finds one anyway
    the summary says so and it is logged as an error for ops, without failing the run.
    """
    config = load_loyalty_config(loyalty_config_path(default_config))
    with transaction(open_store(settings or load_settings())) as session:
        result = expire_points(session, config=config, now=now or datetime.now(UTC))
        negative = (
            select(Ledger.customer_id)
            .group_by(Ledger.customer_id)
            .having(func.sum(Ledger.points) < 0)
            .subquery()
        )
        negatives = session.scalar(select(func.count()).select_from(negative)) or 0
    summary = f"{result}; customers with a negative balance: {negatives}"
    if negatives:
        log.error("loyalty_maintenance: %s", summary)
    else:
        log.info("loyalty_maintenance: %s", summary)
    return summary
