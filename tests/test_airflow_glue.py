"""The inbox watcher's trigger (it fires when the inbox watermark moves, never on presence),
and run notes written through Airflow's API."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from fakes.http_fake import FakeServer, Fault, Recorded, Reply

from postpurchase.airflow_glue import INBOX_ASSET, InboxWatermarkTrigger, write_run_note
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


class FakeNotesApi(FakeServer):
    """Airflow's public API as far as a run note goes: a token, then the PATCH."""

    def handle(self, request: Recorded) -> Reply:
        if request.path == "/auth/token":
            return Reply(201, json.dumps({"access_token": "t0ken"}).encode())
        return Reply(200, json.dumps({"note": json.loads(request.body)["note"]}).encode())


@pytest.fixture
def notes_api():
    server = FakeNotesApi().start()
    yield server
    server.stop()


def _write(api: FakeNotesApi, pauses: list[float], note: str = "idle: inbox empty") -> None:
    write_run_note(
        api.url,
        username="notes",
        password="secret",
        dag_id="process_purchase_events",
        run_id="scheduled__2026-12-01T21:42:00+00:00",
        note=note,
        sleep=pauses.append,
    )


def test_a_run_note_refused_by_a_busy_api_server_is_written_on_the_next_try(notes_api):
    # Airflow's API server on SQLite answers 500 while its database is locked.
    notes_api.fail_next(Fault(0), Fault(500, b'{"detail": "database is locked"}'))
    pauses: list[float] = []

    _write(notes_api, pauses)

    patches = [r for r in notes_api.requests if r.method == "PATCH"]
    assert len(patches) == 2 and pauses == [1.0]
    assert patches[-1].path == (
        "/api/v2/dags/process_purchase_events/dagRuns/"
        "scheduled__2026-12-01T21%3A42%3A00%2B00%3A00?update_mask=note"
    )
    assert json.loads(patches[-1].body) == {"note": "idle: inbox empty"}


def test_a_run_note_refused_for_its_credentials_is_not_retried(notes_api):
    notes_api.fail_next(Fault(401, b'{"detail": "invalid credentials"}'))
    pauses: list[float] = []

    with pytest.raises(httpx.HTTPStatusError):
        _write(notes_api, pauses)

    assert len(notes_api.requests) == 1 and pauses == []


def test_a_run_note_gives_up_after_three_server_errors(notes_api):
    notes_api.fail_next(*[Fault(503)] * 3)
    pauses: list[float] = []

    with pytest.raises(httpx.HTTPStatusError):
        _write(notes_api, pauses)

    assert pauses == [1.0, 2.0]
