"""The rewards' part of event processing and of the follow-up step, called from
``postpurchase.processing`` so that those modules only gain one call each."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.channels.configured import ConnectionLookup, no_connections
from postpurchase.events import EventType
from postpurchase.exceptions import ConfigError
from postpurchase.loyalty.config import LoyaltyConfig, load_loyalty_config
from postpurchase.processing.batch import Records, SourcedEvent
from postpurchase.rewards.bonuses import apply_customer_bonuses
from postpurchase.rewards.configured import configured_redeemer
from postpurchase.rewards.lifecycle import complete_pending
from postpurchase.rewards.messages import plan_reward_messages, reserve_tier_gifts
from postpurchase.rewards.redemption import POOL
from postpurchase.rewards.referrals import apply_referrals
from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import open_store, transaction

log = logging.getLogger(__name__)


def apply_batch(
    session: Session, records: Records, items: Sequence[SourcedEvent], loyalty: LoyaltyConfig
) -> int:
    """Sign-up, birthday and referral points, and tier welcome gifts, for a processed batch,
    in its transaction. Returns the points given."""
    points = apply_customer_bonuses(session, records, items, loyalty)
    points += apply_referrals(session, records, items, loyalty)
    tier_changes = any(item.event.type is EventType.TIER_CHANGED for item in items)
    if tier_changes and any(level.welcome_reward for level in loyalty.tiers.levels):
        # The processing path carries no settings; the rewards platform is read here, for
        # the batches that may reserve a gift (reading the environment costs more than a
        # batch's events).
        rewards = load_settings()
        reserve_tier_gifts(
            session,
            records,
            items,
            loyalty,
            platform=rewards.rewards_platform if rewards.rewards_platform != "pool" else POOL,
            code_prefix=rewards.rewards_code_prefix,
        )
    return points


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
