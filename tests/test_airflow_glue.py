"""The inbox watcher's trigger: it fires when the inbox watermark moves, never on presence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from postpurchase.airflow_glue import INBOX_ASSET, InboxWatermarkTrigger
from postpurchase.store.database import transaction
from postpurchase.store.models import InboxEvent


def _store_event(store, n: int) -> None:
    with transaction(store) as session:
        session.add(
            InboxEvent(
                source="shopify",
                dedupe_key=f"delivery-{n}",
                event_type="order.paid",
                occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
                payload={"type": "order.paid"},
            )
        )


def test_trigger_fires_only_when_the_watermark_moves(store):
    _store_event(store, 1)  # rows already present when the triggerer starts: no event
    trigger = InboxWatermarkTrigger(poll_interval=0)

    async def scenario():
        seen = [await trigger.poll(), await trigger.poll()]
        _store_event(store, 2)
        _store_event(store, 3)
        seen += [await trigger.poll(), await trigger.poll()]
        return seen

    first, unchanged, moved, after = asyncio.run(scenario())

    assert (first, unchanged, after) == (None, None, None)
    assert moved is not None and moved.payload == {"inbox_watermark": 3}


def test_trigger_run_yields_an_event_for_new_rows(store):
    trigger = InboxWatermarkTrigger(poll_interval=0.01)

    async def scenario():
        events = trigger.run()
        waiting = asyncio.ensure_future(anext(events))
        while trigger.watermark is None:  # the first poll has set the baseline
            await asyncio.sleep(0.01)
        assert not waiting.done()
        await asyncio.to_thread(_store_event, store, 1)
        event = await asyncio.wait_for(waiting, timeout=30)  # a guard, not a speed check
        await events.aclose()
        return event

    assert asyncio.run(scenario()).payload == {"inbox_watermark": 1}


def test_trigger_serialises_to_an_importable_class_path_without_secrets():
    classpath, kwargs = InboxWatermarkTrigger(poll_interval=5).serialize()

    assert classpath == "postpurchase.airflow_glue.InboxWatermarkTrigger"
    assert kwargs == {"poll_interval": 5}
    assert isinstance(INBOX_ASSET.watchers[0].trigger, InboxWatermarkTrigger)
