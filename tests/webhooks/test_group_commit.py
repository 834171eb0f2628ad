"""Group commit: concurrent webhooks share a transaction, each gets its own answer."""

import asyncio
from datetime import UTC, datetime

from deliveries import inbox_rows
from sqlalchemy import event

from postpurchase.inbox import InboxEntry
from postpurchase.webhooks import group_commit
from postpurchase.webhooks.group_commit import GroupCommitter


def _entry(key: str, payload=None) -> InboxEntry:
    return InboxEntry(
        source="generic",
        dedupe_key=key,
        event_type="order.paid",
        topic="order.paid",
        shop=None,
        subject_id="A-1",
        occurred_at=datetime(2026, 11, 27, 10, tzinfo=UTC),
        payload={"type": "order.paid"} if payload is None else payload,
    )


def test_concurrent_entries_share_one_statement_and_duplicates_are_told_apart(
    engine, store, monkeypatch
):
    inserts = []  # the batches handed to the database: one INSERT statement each
    for name in ("add_many_to_inbox", "add_many_with_driver"):  # SQLite / PostgreSQL
        insert = getattr(group_commit, name)
        monkeypatch.setattr(
            group_commit, name, lambda *args, insert=insert: inserts.append(1) or insert(*args)
        )
    committer = GroupCommitter(engine)
    keys = [f"generic:-:evt-{n % 80}" for n in range(100)]  # 20 duplicates among them

    async def deliver():
        return await asyncio.gather(*(committer.add(_entry(k)) for k in keys))

    results = asyncio.run(deliver())

    assert len(inserts) == 1  # all 100 were queued before the first batch was written
    rows = inbox_rows(store)
    assert len(rows) == 80
    ids = {row.dedupe_key: row.id for row in rows}
    assert results[:80] == [ids[k] for k in keys[:80]]
    assert results[80:] == [None] * 20


def test_one_unstorable_entry_fails_alone(engine, store):
    committer = GroupCommitter(engine)
    entries = [_entry("a"), _entry("b", payload={"bad": {1, 2}}), _entry("c")]

    async def deliver():
        return await asyncio.gather(*(committer.add(e) for e in entries), return_exceptions=True)

    first, bad, last = asyncio.run(deliver())
    assert isinstance(bad, Exception)  # the driver's own error; the others are unaffected
    assert [row.dedupe_key for row in inbox_rows(store)] == ["a", "c"]
    assert {first, last} == {row.id for row in inbox_rows(store)}


def test_a_lone_entry_is_written_without_waiting_for_company(engine, store):
    committer = GroupCommitter(engine)
    first = asyncio.run(committer.add(_entry("solo")))
    again = asyncio.run(committer.add(_entry("solo")))  # another event loop, same committer
    assert (first, again) == (inbox_rows(store)[0].id, None)


def test_a_drain_checks_one_connection_out_for_its_run_of_batches(engine, store):
    checkouts = []
    event.listen(engine, "checkout", lambda *args: checkouts.append(1))
    committer = GroupCommitter(engine, max_batch=2)
    keys = [f"generic:-:run-{n}" for n in range(6)]

    async def deliver():
        return await asyncio.gather(*(committer.add(_entry(k)) for k in keys))

    results = asyncio.run(deliver())

    assert len(checkouts) == 1  # three batches of two, one checkout (and ping) for all
    assert results == [row.id for row in inbox_rows(store)]
    assert engine.pool.checkedout() == 0  # returned once the queue was empty


def test_a_failed_batch_gives_its_connection_back_and_the_retries_store_the_rest(engine, store):
    committer = GroupCommitter(engine)
    entries = [_entry("x"), _entry("y", payload={"bad": {1}}), _entry("z")]

    async def deliver():
        first = await asyncio.gather(*(committer.add(e) for e in entries), return_exceptions=True)
        return first, await committer.add(_entry("after"))

    (x, bad, z), after = asyncio.run(deliver())

    assert isinstance(bad, Exception)
    assert [row.dedupe_key for row in inbox_rows(store)] == ["x", "z", "after"]
    assert engine.pool.checkedout() == 0
