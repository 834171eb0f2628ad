"""The ``dispatch_touchpoints`` DAG's task bodies: read settings, build the dispatcher, run.

Until the campaign configuration supplies message specs, ``BUILTIN_SPECS`` describes the six
default campaigns (template of the same name, consent kind, smart sending, cancel rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from postpurchase.channels.configured import email_sender, limiters, sms_sender
from postpurchase.dispatch import (
    CampaignLookup,
    Dispatcher,
    GatePolicy,
    MessageSpec,
    claim_chunks,
    summarize,
)
from postpurchase.messages.context import ShopProfile
from postpurchase.messages.rendering import renderer_for
from postpurchase.messages.tokens import signing_key
from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import open_store


@dataclass(frozen=True)
class BuiltinSpec:
    id: str
    template: str
    consent: Literal["transactional", "marketing"]
    smart_sending: bool
    cancel_on: frozenset[str]


_ORDER_GONE = frozenset({"cancelled", "refunded", "returned"})
BUILTIN_SPECS: dict[str, BuiltinSpec] = {
    s.id: s
    for s in (
        BuiltinSpec("delivery_checkin", "delivery_checkin", "transactional", False, _ORDER_GONE),
        BuiltinSpec("setup_tips", "setup_tips", "transactional", False, _ORDER_GONE),
        BuiltinSpec(
            "review_request",
            "review_request",
            "marketing",
            True,
            _ORDER_GONE | {"reviewed"},
        ),
        BuiltinSpec("points_earned", "points_earned", "transactional", False, _ORDER_GONE),
        BuiltinSpec("vip_welcome", "vip_welcome", "marketing", False, frozenset()),
        BuiltinSpec("win_back", "win_back", "marketing", True, frozenset()),
    )
}


def builtin_lookup(campaign_id: str) -> MessageSpec | None:
    return BUILTIN_SPECS.get(campaign_id)


def build_dispatcher(settings: Settings, lookup: CampaignLookup = builtin_lookup) -> Dispatcher:
    """A dispatcher wired from settings: store, renderer, senders, limiters, gate policy."""
    email_limiter, sms_limiter = limiters(settings)
    return Dispatcher(
        store=open_store(settings),
        lookup=lookup,
        renderer=renderer_for(settings),
        shop=ShopProfile.from_settings(settings, signing_key(settings)),
        email=email_sender(settings),
        sms=sms_sender(settings),
        email_limiter=email_limiter,
        sms_limiter=sms_limiter,
        sender_email=settings.sender_email,
        send_concurrency=settings.dispatch_send_concurrency,
        lease=timedelta(seconds=settings.claim_lease_seconds),
        policy=GatePolicy(
            quiet_start=settings.quiet_hours_start,
            quiet_end=settings.quiet_hours_end,
            smart_email=timedelta(hours=settings.smart_sending_email_hours),
            smart_sms=timedelta(hours=settings.smart_sending_sms_hours),
            send_attempts=settings.send_attempts,
            max_retry_wait=settings.max_retry_wait_seconds,
        ),
    )


def claim_for_run(run_key: str, settings: Settings | None = None) -> list[dict[str, Any]]:
    """The DAG's first task: claim chunks of due touchpoints for the run ``run_key``."""
    settings = settings or load_settings()
    return claim_chunks(
        open_store(settings),
        run_key=run_key,
        now=datetime.now(UTC),
        chunk_size=settings.dispatch_chunk_size,
        max_chunks=settings.dispatch_max_chunks,
        lease=timedelta(seconds=settings.claim_lease_seconds),
    )


def dispatch_chunk(chunk: dict[str, Any], settings: Settings | None = None) -> dict[str, int]:
    """The mapped task: send one claimed chunk; returns counts per outcome."""
    dispatcher = build_dispatcher(settings or load_settings())
    return dispatcher.run_chunk(str(chunk["worker"]), [int(i) for i in chunk["ids"]])


def dispatch_summary(results: Sequence[dict[str, int]]) -> str:
    """The last task: one line of counts per outcome for the run."""
    return summarize(list(results))
