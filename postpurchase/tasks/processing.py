"""The processing DAG's tasks: each reads settings and campaigns when it runs, then works.

Campaigns are read at run time, so an edit applies to the next run without a restart; an
invalid file raises ConfigError (every ``file:line: message``) before anything is claimed
or changed. Each task returns a short summary for the Airflow UI and logs it.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from postpurchase.airflow_glue.connections import connection_fields, connection_if_any
from postpurchase.campaigns.config import CampaignConfig
from postpurchase.campaigns.validation import load_valid_campaigns
from postpurchase.catalogue.lookup import look_up_products
from postpurchase.catalogue.platform_api import configured_apis
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.processing.batch import InboxSummary
from postpurchase.processing.drain import process_inbox, utc_now
from postpurchase.processing.followups import plan_assumed_deliveries, plan_lapsed_customers
from postpurchase.settings import Settings, load_settings
from postpurchase.shop_settings.directory import shop_directory
from postpurchase.store.database import open_store, transaction

log = logging.getLogger(__name__)

# Stop claiming new batches after this, so a run ends well before the next minute's run.
TIME_BUDGET = timedelta(minutes=4)


def worker_name() -> str:
    """A claimant id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _setup(settings: Settings | None) -> tuple[Settings, CampaignConfig, ZoneInfo]:
    settings = settings or load_settings()
    return settings, planning_campaigns(settings), ZoneInfo(settings.shop_time_zone)


def planning_campaigns(settings: Settings) -> CampaignConfig:
    """The campaign file after the full check, knowing the time zone of each shop of the
    shops file; ConfigError (``file:line``) when either file is invalid."""
    config = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    shops = shop_directory(settings).configured()
    return config.with_shop_zones({shop.key: ZoneInfo(shop.time_zone) for shop in shops})


def drainer_slots(settings: Settings | None = None) -> list[int]:
    """One number per drain task instance of a run: ``drain_workers`` on PostgreSQL, where
    claims skip each other's rows; one on SQLite, where a second drainer would only wait for
    the single writer lock."""
    settings = settings or load_settings()
    if settings.sqlalchemy_url.get_backend_name() != "postgresql":
        return [0]
    return list(range(settings.drain_workers))


def drain_inbox(settings: Settings | None = None, *, now: datetime | None = None) -> dict[str, Any]:
    """Process pending inbox events until none is left or the time budget is spent; returns
    the counts (``InboxSummary.counts()``) and logs them. Several may run at once."""
    settings, config, zone = _setup(settings)
    loyalty = load_loyalty_config(settings.loyalty_config)
    summary = process_inbox(
        open_store(settings),
        config,
        worker=worker_name(),
        shop_zone=zone,
        clock=(lambda: now) if now is not None else utc_now,
        time_budget=TIME_BUDGET,
        loyalty=loyalty,
    )
    if summary.events or summary.failed or summary.retried:
        log.info("%s", "\n".join(summary.lines()))
    else:
        log.info("%s", IDLE)
    return summary.counts()


def drain_summary(parts: Iterable[Mapping[str, Any]]) -> str:
    """The run's drain counts, all drainers together, as the lines of its note."""
    return "\n".join(InboxSummary.combined(parts).lines())


IDLE = "idle: inbox empty"


@dataclass(frozen=True)
class Followups:
    """What ``plan_followups`` did."""

    assumed: int  # orders assumed delivered
    deliveries: int  # touchpoints planned for them
    winbacks: int  # win-back touchpoints planned
    rewards: str | None = None  # what the reward follow-ups did; None: nothing

    @property
    def idle(self) -> bool:
        return not (self.assumed or self.deliveries or self.winbacks or self.rewards)

    def text(self) -> str:
        text = (
            f"{self.assumed} order(s) assumed delivered, {self.deliveries} touchpoint(s) "
            f"planned for them; {self.winbacks} win-back touchpoint(s) planned"
        )
        return f"{text}; {self.rewards}" if self.rewards else text


def plan_followups(settings: Settings | None = None, *, now: datetime | None = None) -> Followups:
    """Plan assumed deliveries and win-backs due by ``now``; logs and returns the counts."""
    settings, config, zone = _setup(settings)
    moment = now or utc_now()
    with transaction(open_store(settings)) as session:
        assumed, deliveries = plan_assumed_deliveries(session, config, now=moment, shop_zone=zone)
        lapses = plan_lapsed_customers(session, config, now=moment, shop_zone=zone)
    # Codes to issue and messages about rewards (postpurchase.rewards).
    from postpurchase.rewards.followups import reward_followups

    rewards = reward_followups(
        settings, config, now=moment, shop_zone=zone, connection=connection_fields
    )
    followups = Followups(assumed, deliveries.planned, lapses.planned, rewards)
    log.info("%s", followups.text())
    return followups


def processing_note(drained: Iterable[Mapping[str, Any]], followups: Followups) -> str:
    """The run's note: the drain's counts and the follow-ups, or the one line
    ``idle: inbox empty`` for a run that found nothing to do (most runs: the DAG runs every
    minute and on each webhook), so ops tell a quiet run from a broken one at a glance."""
    summary = InboxSummary.combined(drained)
    if followups.idle and not (summary.events or summary.failed or summary.retried):
        log.info("%s", IDLE)
        return IDLE
    return "\n".join(summary.lines()) + "\n\n" + followups.text()


def look_up_unknown_products(
    settings: Settings | None = None, *, now: datetime | None = None
) -> str:
    """The processing DAG's look-up step (and ``postpurchase products lookup``): asks the
    configured platforms for the unknown products due now; returns and logs the counts."""
    settings = settings or load_settings()
    counts = look_up_products(
        open_store(settings),
        configured_apis(settings, connection=connection_if_any),
        now=now or datetime.now(UTC),
        limit=settings.product_lookups_per_run,
    )
    text = counts.line()
    log.info("%s", text)
    return text
