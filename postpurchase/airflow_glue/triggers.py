"""Waking the processing DAG: the inbox asset and its watermark trigger.

Webhook intake only writes the inbox and never calls Airflow. The ``INBOX_ASSET`` watcher
runs ``InboxWatermarkTrigger`` in the triggerer, which polls the inbox's highest id and fires
when it moves, which is an asset event that starts a run. Asset events can be stranded in
Airflow 3.3.2 (apache/airflow#56050), so the DAG also runs every minute and always drains the
inbox itself: the event only shortens the wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)


def _read_watermark() -> int:
    # Imported here: the triggerer and DAG processor import this module, and only the
    # trigger's poll needs a database connection.
    from postpurchase.settings import load_settings
    from postpurchase.store.database import open_store
    from postpurchase.store.status import inbox_watermark

    with open_store(load_settings())() as session:
        return inbox_watermark(session)


class InboxWatermarkTrigger(BaseEventTrigger):
    """Fires each time the inbox's highest id grows past the last value it saw.

    The first poll only records the watermark: it fires on movement, never on presence, so a
    restarted triggerer does not wake the DAG for rows it may already have processed (the
    one-minute schedule covers anything that arrived while the triggerer was down). A failed
    poll (database unreachable) is logged and retried at the next interval.

    The database is the engine's own (``POSTPURCHASE_DATABASE_URL`` in the triggerer's
    environment); nothing secret is serialised into Airflow's.
    """

    def __init__(self, *, poll_interval: float = 5.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.poll_interval = poll_interval
        self.watermark: int | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # The package path: the classpath Airflow stores stays put when modules move inside it.
        return (f"{__package__}.{type(self).__name__}", {"poll_interval": self.poll_interval})

    async def poll(self) -> TriggerEvent | None:
        """Read the watermark once; an event when it moved since the previous poll."""
        try:
            current = await asyncio.to_thread(_read_watermark)
        except Exception as exc:  # a poll must never end the watcher; the next one retries
            log.warning("inbox watermark poll failed: %s", exc)
            return None
        previous, self.watermark = self.watermark, current
        if previous is None or current <= previous:
            return None
        return TriggerEvent({"inbox_watermark": current})  # type: ignore[no-untyped-call]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            event = await self.poll()
            if event is not None:
                yield event
            await asyncio.sleep(self.poll_interval)


INBOX_ASSET = Asset(
    "postpurchase_inbox",
    watchers=[AssetWatcher(name="postpurchase_inbox_watermark", trigger=InboxWatermarkTrigger())],
)
