"""The housekeeping DAG's privacy step: fulfil waiting requests, then apply retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from postpurchase.privacy.requests import fulfil_pending
from postpurchase.privacy.retention import purge_personal_fields
from postpurchase.settings import Settings
from postpurchase.store.database import open_store


def run_privacy(settings: Settings, *, now: datetime) -> str:
    """Fulfil compliance requests waiting in the inbox and purge personal fields past the
    retention period; returns a summary line for the run note."""
    factory = open_store(settings)
    fulfilled = fulfil_pending(factory, settings, now=now)
    days = settings.payload_retention_days
    purged = purge_personal_fields(factory, now=now, retention=timedelta(days=days))
    return (
        f"fulfilled {fulfilled} privacy request(s); removed personal fields from "
        f"{purged.inbox_payloads} inbox payload(s) and {purged.message_events} provider "
        f"event(s) older than {days} days"
    )
