"""The rewards' part of the processing DAG's follow-up step: codes to issue, and messages
about rewards to plan."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.channels.configured import ConnectionLookup, no_connections
from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.config import load_loyalty_config
from postpurchase.rewards.configured import configured_redeemer
from postpurchase.rewards.lifecycle import complete_pending
from postpurchase.rewards.messages import plan_reward_messages
from postpurchase.settings import Settings
from postpurchase.store.database import open_store, transaction

log = logging.getLogger(__name__)


def reward_followups(
    settings: Settings,
    campaigns: CampaignConfig,
    *,
    now: datetime,
    shop_zone: ZoneInfo,
    connection: ConnectionLookup = no_connections,
) -> str | None:
    """Issue pending codes (tier gifts; redemptions whose platform call failed) and plan
    reward.issued / points.expiring messages; what was done, or None when there was nothing
    to do (so an idle run stays one line). A broken loyalty file skips this step only."""
    try:
        loyalty = load_loyalty_config(settings.loyalty_config)
        redeemer = configured_redeemer(settings, loyalty, connection=connection)
    except ConfigError as exc:
        log.error("reward follow-ups skipped: %s", exc)
        return "reward follow-ups skipped (configuration)"
    try:
        pending = complete_pending(redeemer, now=now, older_than=timedelta(seconds=30))
    finally:
        redeemer.close()
    with transaction(open_store(settings)) as session:
        planned = plan_reward_messages(
            session, campaigns, loyalty=loyalty, now=now, shop_zone=shop_zone
        )
    if not (pending.issued or pending.refunded or pending.still_pending or planned.planned):
        return None
    return f"{pending}; {planned.planned} reward message(s) planned"
