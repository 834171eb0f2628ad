"""The ``dispatch_touchpoints`` DAG's task bodies: read settings and campaigns, build the
dispatcher, run. Campaigns are read when a task runs, so an edit needs no restart."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from postpurchase.airflow_glue.connections import connection_fields
from postpurchase.campaigns.config import Campaign, CampaignConfig, load_campaigns
from postpurchase.campaigns.validation import load_valid_campaigns
from postpurchase.channels.configured import (
    ConnectionLookup,
    email_sender,
    limiters,
    shop_email_sender,
    shop_sms_sender,
    sms_sender,
)
from postpurchase.channels.senders import EmailSender, SmsSender
from postpurchase.dispatch import (
    CampaignLookup,
    Dispatcher,
    GatePolicy,
    claim_chunks,
)
from postpurchase.dispatch.notes import IDLE, dispatch_note, skip_reasons
from postpurchase.dispatch.outcomes import ShopOutlet
from postpurchase.journey import CANCEL_STATES
from postpurchase.messages.context import ShopProfile
from postpurchase.messages.rendering import renderer_for
from postpurchase.messages.tokens import signing_key, signing_keys
from postpurchase.settings import Settings, load_settings
from postpurchase.shop_settings.directory import ShopDirectory, shop_directory
from postpurchase.store.database import open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignSpec:
    """What dispatch needs of a configured campaign (see ``dispatch.MessageSpec``)."""

    id: str
    template: str
    consent: Literal["transactional", "marketing"]
    smart_sending: bool
    cancel_on: frozenset[str]
    expires_after: timedelta | None = None
    # the campaign is only for orders that earned points (its condition reads them): checked
    # again at send time, since a refund may have taken them back meanwhile
    needs_points: bool = False

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignSpec:
        states = {CANCEL_STATES[e] for e in campaign.cancel_on if e in CANCEL_STATES}
        expiry = campaign.expires_after
        return cls(
            campaign.id,
            campaign.template,
            campaign.consent,
            campaign.smart_sending,
            frozenset(states),
            timedelta(days=expiry.days, seconds=expiry.seconds) if expiry else None,
            needs_points=campaign.when is not None and "points_earned" in campaign.when.source,
        )


def campaign_lookup(config: CampaignConfig) -> CampaignLookup:
    """Specs of the enabled campaigns by id; a disabled or removed campaign's touchpoints are
    not sent (they are skipped with the reason)."""
    specs = {c.id: CampaignSpec.of(c) for c in config.campaigns if c.enabled}
    return specs.get


def configured_lookup(settings: Settings, shop: str = "") -> CampaignLookup:
    """The lookup for the campaign file as it is now (read per task: edits apply at once),
    with the overrides of ``shop``."""
    config = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    return campaign_lookup(config.for_shop(shop))


def shop_outlets(
    settings: Settings,
    config: CampaignConfig,
    directory: ShopDirectory,
    *,
    key: bytes,
    email: EmailSender,
    sms: SmsSender,
    connection: ConnectionLookup,
) -> dict[str, ShopOutlet]:
    """The outlet of every shop that differs from the default: those of ``shops.yaml``
    (brand, accounts) and those with campaign overrides. ``email`` and ``sms`` are the
    engine's senders, which shops without an account of their own share."""
    keys = {shop.key for shop in directory.configured()} | set(config.shops)
    outlets = {}
    for shop_key in sorted(keys):
        shop = directory.get(shop_key)
        outlets[shop_key] = ShopOutlet(
            ShopProfile.of(shop, settings, key),
            campaign_lookup(config.for_shop(shop_key)),
            shop_email_sender(settings, shop, default=email, connection=connection),
            shop_sms_sender(settings, shop, default=sms, connection=connection),
        )
    return outlets


def build_dispatcher(settings: Settings, config: CampaignConfig | None = None) -> Dispatcher:
    """A dispatcher wired from settings: campaigns, store, renderer, senders, limiters, gates,
    and every shop's profile, campaign overrides and senders (``shops.yaml``)."""
    if config is None:
        config = load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    key = signing_key(settings)
    directory = shop_directory(settings)
    email = email_sender(settings, connection=connection_fields)
    sms = sms_sender(settings, connection=connection_fields)
    email_limiter, sms_limiter = limiters(settings)
    return Dispatcher(
        store=open_store(settings),
        lookup=campaign_lookup(config),
        renderer=renderer_for(settings),
        shop=ShopProfile.of(directory.default, settings, key),
        email=email,
        sms=sms,
        email_limiter=email_limiter,
        sms_limiter=sms_limiter,
        send_concurrency=settings.dispatch_send_concurrency,
        lease=timedelta(seconds=settings.claim_lease_seconds),
        policy=GatePolicy(
            quiet_start=settings.quiet_hours_start,
            quiet_end=settings.quiet_hours_end,
            smart_email=timedelta(hours=settings.smart_sending_email_hours),
            smart_sms=timedelta(hours=settings.smart_sending_sms_hours),
            send_attempts=settings.send_attempts,
            max_retry_wait=settings.max_retry_wait_seconds,
            email_marketing=settings.email_marketing_consent,
            suppression_keys=tuple(signing_keys(settings)),
        ),
        shops=shop_outlets(
            settings, config, directory, key=key, email=email, sms=sms, connection=connection_fields
        ),
    )


def claim_for_run(run_key: str, settings: Settings | None = None) -> list[dict[str, Any]]:
    """The DAG's first task: claim chunks of due touchpoints for the run ``run_key``.

    With nothing due it returns one empty chunk: the run maps one instance that does nothing
    and ends green, where an empty mapping would mark the send and summary tasks skipped
    (pink in the UI, on most runs, looking like something went wrong).
    """
    settings = settings or load_settings()
    # The full check (every template rendered) once per run, before anything is claimed; the
    # mapped chunks then only read the file.
    load_valid_campaigns(settings.campaigns_file, settings.templates_dir)
    shop_directory(settings)  # and the shops file: an error stops the run before any claim
    chunks = claim_chunks(
        open_store(settings),
        run_key=run_key,
        now=datetime.now(UTC),
        chunk_size=settings.dispatch_chunk_size,
        max_chunks=settings.dispatch_max_chunks,
        lease=timedelta(seconds=settings.claim_lease_seconds),
    )
    return chunks or [{"worker": f"{run_key}/idle", "ids": []}]


def dispatch_chunk(chunk: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The mapped task: send one claimed chunk; returns ``{"counts": per outcome,
    "skipped": per reason}`` and logs both."""
    ids = [int(i) for i in chunk["ids"]]
    if not ids:
        log.info("%s", IDLE)
        return {"counts": {}, "skipped": {}}
    settings = settings or load_settings()
    # Templates were checked once for the whole run by claim_for_run.
    dispatcher = build_dispatcher(settings, load_campaigns(settings.campaigns_file))
    counts = dispatcher.run_chunk(str(chunk["worker"]), ids)
    with dispatcher.store() as session:
        reasons = skip_reasons(session, ids)
    result = {"counts": counts, "skipped": reasons}
    log.info("%s", dispatch_note([result]))
    return result


def dispatch_summary(results: Sequence[Mapping[str, Any]]) -> str:
    """The last task: the run's note (outcomes and skip reasons, or idle), also logged."""
    note = dispatch_note(list(results))
    log.info("%s", note)
    return note
