"""Keeping the engine's database small and whole: rejected webhooks are kept for ops, but not
forever; opt-outs spooled while the database was away are applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from postpurchase.privacy.runs import run_privacy
from postpurchase.settings import Settings, load_settings
from postpurchase.store.database import open_store, transaction
from postpurchase.store.models import RejectedWebhook
from postpurchase.webhooks import opt_out_spool


def prune_rejected_webhooks(
    session: Session, *, now: datetime, retention: timedelta, cap: int
) -> int:
    """Delete rejected webhooks older than ``retention``, then all but the newest ``cap``.

    Returns how many rows were deleted. Running it twice in a row deletes nothing the second time.
    """
    deleted = session.execute(
        delete(RejectedWebhook).where(RejectedWebhook.received_at < now - retention)
    ).rowcount  # type: ignore[attr-defined]
    oldest_kept = session.execute(
        select(RejectedWebhook.id).order_by(RejectedWebhook.id.desc()).offset(cap - 1).limit(1)
    ).scalar_one_or_none()
    if oldest_kept is not None:
        deleted += session.execute(
            delete(RejectedWebhook).where(RejectedWebhook.id < oldest_kept)
        ).rowcount  # type: ignore[attr-defined]
    return int(deleted)


def tidy_database(settings: Settings | None = None, *, now: datetime | None = None) -> str:
    """The housekeeping DAG's task: prune with the configured limits; returns a summary line."""
    settings = settings or load_settings()
    # Only where this process sees the spool (the same host, or a shared spool directory).
    applied = opt_out_spool.replay(settings, open_store(settings))
    with transaction(open_store(settings)) as session:
        pruned = prune_rejected_webhooks(
            session,
            now=now or datetime.now(UTC),
            retention=timedelta(days=settings.rejected_webhook_retention_days),
            cap=settings.rejected_webhook_cap,
        )
    privacy = run_privacy(settings, now=now or datetime.now(UTC))
    return f"pruned {pruned} rejected webhook(s); applied {applied} spooled opt-out(s); {privacy}"
