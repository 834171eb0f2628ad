"""The rewards' part of event processing, called from ``postpurchase.processing`` so that the
drain only gains one call (the follow-up step's part is ``rewards.followups``).

Every drainer imports this module, so it stays clear of the rewards platforms' clients
(aiohttp) and of the channels' rate limiter (redis): loading them cost each drainer about 0.3 s
of CPU, as much as a batch of a thousand events.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from postpurchase.events import EventType
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.processing.batch import Records, SourcedEvent
from postpurchase.rewards.bonuses import apply_customer_bonuses
from postpurchase.rewards.referrals import apply_referrals
from postpurchase.settings import load_settings


def apply_batch(
    session: Session, records: Records, items: Sequence[SourcedEvent], loyalty: LoyaltyConfig
) -> int:
    """Sign-up, birthday and referral points, and tier welcome gifts, for a processed batch,
    in its transaction. Returns the points given."""
    points = apply_customer_bonuses(session, records, items, loyalty)
    points += apply_referrals(session, records, items, loyalty)
    # the config first: read once, where the events are read one by one
    gifts = any(level.welcome_reward for level in loyalty.tiers.levels)
    tier_changed = EventType.TIER_CHANGED  # an enum member read once, not once per event
    if gifts and any(item.kind is tier_changed for item in items):
        # Imported by the few batches that reserve a gift: the reservation's module brings
        # in the rewards platforms' clients (see the module's docstring).
        from postpurchase.rewards.messages import reserve_tier_gifts
        from postpurchase.rewards.redemption import POOL

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
