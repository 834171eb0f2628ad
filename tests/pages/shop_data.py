"""A database filled by the demo feed, the way the DAGs would fill it, in this process.

The demo's month of Shopify deliveries (signed as Shopify signs them) goes through intake into
the inbox; the processing, follow-up, dispatch (to the outbox), outcome and tier steps run as
their tasks do. Pages then have real orders, journeys, points, tiers and funnels to show.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from starlette.datastructures import Headers

from postpurchase.campaigns.config import load_campaigns
from postpurchase.demo.feed import build_feed
from postpurchase.demo.outcomes import simulate_outcomes
from postpurchase.demo.replay import shopify_request
from postpurchase.inbox import InboxEntry, add_to_inbox
from postpurchase.settings import PROJECT_ROOT, Settings
from postpurchase.store.database import open_store, transaction
from postpurchase.tasks.dispatch import claim_for_run, dispatch_chunk
from postpurchase.tasks.loyalty import refresh_tiers
from postpurchase.tasks.outcomes import measure_outcomes
from postpurchase.tasks.processing import drain_inbox, plan_followups
from postpurchase.webhooks.intake import shopify_entry

SECRET = "shpss_pages_demo_secret"


def shop_settings(db_url: str, var_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "shopify_webhook_secret": SecretStr(SECRET),
        "var_dir": var_dir,
        # every process signs the customers' links alike (required on PostgreSQL)
        "signing_secret": SecretStr("pages-demo-link-signing-secret-0123456789abcdef"),
    }
    values.update(overrides)
    return Settings(**values)


def fill_demo_shop(
    settings: Settings, *, orders: int = 40, shop: str | None = None, now: datetime | None = None
) -> datetime:
    """The demo feed of ``orders`` orders, processed and dispatched; returns the feed's now.
    With ``shop``, the same feed (the same order and customer ids) as another shop's."""
    now = now or datetime.now(UTC)
    factory = open_store(settings)
    with transaction(factory) as session:
        for delivery in build_feed(orders=orders, now=now):
            request = json.loads(delivery.to_json())
            if shop is not None:
                request["shop"] = shop
            body, headers = shopify_request(request, SECRET)
            entry = shopify_entry(settings, Headers(headers=headers), body, now)
            if isinstance(entry, InboxEntry):
                add_to_inbox(session, entry)
    drain_inbox(settings)
    plan_followups(settings)
    drain_inbox(settings)
    for chunk in claim_for_run("pages-test", settings):
        dispatch_chunk(chunk, settings)
    refresh_tiers(PROJECT_ROOT / "config" / "loyalty.yaml", settings=settings)
    drain_inbox(settings)  # the tier changes the refresh put in the inbox
    with transaction(factory) as session:
        simulate_outcomes(session, now=now)
        measure_outcomes(session, load_campaigns(settings.campaigns_file), now=now)
    return now
