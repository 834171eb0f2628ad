"""A drain tunes Python's garbage collector for its batches (heap frozen, young objects
collected about once per batch) and leaves it as it found it: the task's process goes on with
its own settings."""

from __future__ import annotations

import gc
from zoneinfo import ZoneInfo

from event_journeys import at, order_event, put

from postpurchase.processing.drain import _YOUNG_OBJECTS, process_batch, process_inbox


def test_a_drain_restores_the_collector_it_tuned(store, campaigns):
    put(store, order_event("order.paid", "2026-03-01T15:01:00+00:00"))
    before = gc.get_threshold()
    during = []

    def watched(*args, **kwargs):
        during.append((gc.get_threshold(), gc.get_freeze_count()))
        process_batch(*args, **kwargs)

    summary = process_inbox(
        store,
        campaigns,
        worker="test-worker",
        shop_zone=ZoneInfo("UTC"),
        clock=lambda: at("2026-03-20T12:00:00+00:00"),
        processor=watched,
    )

    assert summary.events == {"order.paid": 1}
    [(thresholds, frozen)] = during
    assert thresholds == (max(before[0], _YOUNG_OBJECTS), *before[1:])
    assert frozen > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
