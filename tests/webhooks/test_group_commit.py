"""Group commit: concurrent webhooks share a transaction, each gets its own answer."""

import asyncio
import json
from datetime import UTC, datetime

import psycopg
import pytest
from deliveries import FIXTURES, inbox_rows
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from postpurchase.inbox import InboxEntry
from postpurchase.platforms import shopify
from postpurchase.store.database import transaction
from postpurchase.store.inbox_claims import claim_inbox_rows
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
    for name in ("add_many_to_inbox", "add_many_with_async_driver"):  # SQLite / PostgreSQL
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


def test_a_drain_writes_its_run_of_batches_on_one_connection(engine, store, loop_connections):
    checkouts = []  # SQLite: from the pool (each with its check); PostgreSQL: its own
    event.listen(engine, "checkout", lambda *args: checkouts.append(1))
    committer = GroupCommitter(engine, max_batch=2)
    keys = [f"generic:-:run-{n}" for n in range(6)]

    async def deliver():
        return await asyncio.gather(*(committer.add(_entry(k)) for k in keys))

    results = asyncio.run(deliver())

    # three batches of two, one connection for all
    on_postgres = engine.dialect.name == "postgresql"
    assert (len(checkouts), len(loop_connections)) == ((0, 1) if on_postgres else (1, 0))
    assert results == [row.id for row in inbox_rows(store)]
    assert engine.pool.checkedout() == 0  # returned once the queue was empty


@pytest.fixture
def loop_connections(monkeypatch) -> list[psycopg.AsyncConnection]:
    """Every connection a committer opens for an event loop (PostgreSQL), in order."""
    opened: list[psycopg.AsyncConnection] = []
    connect = psycopg.AsyncConnection.connect

    async def recorded(**kwargs):
        connection = await connect(**kwargs)
        opened.append(connection)
        return connection

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", recorded)
    return opened


ON_POSTGRES = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@ON_POSTGRES
def test_the_loop_keeps_its_connection_between_drains_and_closes_it_when_it_ends(
    engine, store, loop_connections
):
    committer = GroupCommitter(engine)

    async def deliver():
        first = await committer.add(_entry("first"))
        await asyncio.sleep(0.05)  # the queue is empty: the drain waits for more
        second = await committer.add(_entry("second"))
        return first, second, loop_connections[0].closed

    first, second, closed_meanwhile = asyncio.run(deliver())

    assert (first, second) == tuple(row.id for row in inbox_rows(store))
    assert len(loop_connections) == 1 and not closed_meanwhile
    assert loop_connections[0].closed  # when asyncio.run cancelled the idle drain


@ON_POSTGRES
def test_an_idle_loop_connection_is_closed_and_the_next_entry_opens_another(
    engine, store, loop_connections
):
    committer = GroupCommitter(engine, idle_seconds=0.01)

    async def deliver():
        first = await committer.add(_entry("early"))
        await asyncio.sleep(0.2)
        closed_when_idle = loop_connections[0].closed
        return first, closed_when_idle, await committer.add(_entry("late"))

    first, closed_when_idle, late = asyncio.run(deliver())

    assert (first, late) == tuple(row.id for row in inbox_rows(store))
    assert closed_when_idle and len(loop_connections) == 2


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


@ON_POSTGRES
def test_an_entry_the_database_refuses_gets_sqlalchemys_error_and_the_connection_stays(
    engine, store, loop_connections
):
    committer = GroupCommitter(engine)
    # Valid JSON, but PostgreSQL refuses the NUL escape as a text column's value (intake
    # refuses it earlier).
    entries = [_entry("p"), _entry("q\x00"), _entry("r")]

    async def deliver():
        return await asyncio.gather(*(committer.add(e) for e in entries), return_exceptions=True)

    first, refused, last = asyncio.run(deliver())

    assert isinstance(refused, DBAPIError)  # the route answers 503 for it
    assert [row.dedupe_key for row in inbox_rows(store)] == ["p", "r"]
    assert {first, last} == {row.id for row in inbox_rows(store)}
    assert len(loop_connections) == 1  # the failed statement left it usable


def _counting_batches(monkeypatch) -> list[int]:
    batches: list[int] = []
    insert = group_commit.add_many_with_async_driver

    def counted(driver, dialect, entries):
        batches.append(len(entries))
        return insert(driver, dialect, entries)

    monkeypatch.setattr(group_commit, "add_many_with_async_driver", counted)
    return batches


async def _two_waves(committer: GroupCommitter, second: int) -> list[int | None]:
    """Three entries at once, then ``second`` more one by one, 10 ms apart."""
    await asyncio.gather(*(committer.add(_entry(f"first-{n}")) for n in range(3)))
    later = []
    for n in range(second):
        await asyncio.sleep(0.01)
        later.append(asyncio.ensure_future(committer.add(_entry(f"second-{n}"))))
    return await asyncio.gather(*later)


def test_after_a_batch_of_several_the_drain_lingers_for_as_many_again(engine, store, monkeypatch):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writer threads do not linger")
    batches = _counting_batches(monkeypatch)
    committer = GroupCommitter(engine, linger_seconds=5.0)

    async def deliver():  # the third of the second wave ends the linger, long before 5 s
        return await asyncio.wait_for(_two_waves(committer, 3), 2)

    asyncio.run(deliver())
    assert batches == [3, 3]
    assert len(inbox_rows(store)) == 6


def test_a_linger_ends_after_its_time_with_what_came(engine, store, monkeypatch):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writer threads do not linger")
    batches = _counting_batches(monkeypatch)
    committer = GroupCommitter(engine, linger_seconds=0.05)
    asyncio.run(_two_waves(committer, 1))
    assert batches == [3, 1]
    assert len(inbox_rows(store)) == 4


def test_a_claim_gives_back_each_payload_as_intake_wrote_it(engine, store):
    """The genuine order's event (its customer's name beyond ASCII) and a payload given as an
    object (as ignored deliveries and privacy requests have): the inbox keeps their JSON as
    written, compact, so a drainer reads the bytes intake made (on PostgreSQL a json column:
    jsonb wrote each one out again, spaced)."""
    data = json.loads((FIXTURES / "shopify" / "orders_create.json").read_text())
    event = shopify.normalise("orders/paid", data, received_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert event is not None and "Inès" in event.payload_json().decode()
    entries = [
        InboxEntry.for_event(
            event, source="shopify", dedupe_key="k-order", topic="orders/paid", shop="s.example"
        ),
        _entry("k-small", payload={"type": "order.paid", "note": "déjà vu"}),
    ]
    committer = GroupCommitter(engine)

    async def deliver():
        return await asyncio.gather(*(committer.add(e) for e in entries))

    asyncio.run(deliver())

    with transaction(store) as session:
        claimed = claim_inbox_rows(session, worker="test", now=datetime.now(UTC), limit=10)
    assert [row.payload for row in claimed] == [e.payload_json for e in entries]
