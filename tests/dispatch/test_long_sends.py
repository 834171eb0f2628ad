"""Sends that outlive their lease, and rate limiters that fail: nothing lost, nothing mislabelled.

Real SDKs against the fake providers, on SQLite and PostgreSQL. The providers are made slow
with events (the answer waits until the test lets it go), and time moves by injected clocks.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fakes.fixtures import add_customer, add_order, add_touchpoint
from fakes.http_fake import Fault
from sent_statements import statements_sent
from sqlalchemy import event

from postpurchase.channels.ratelimit import LocalRateLimiter, rate_limiter
from postpurchase.dispatch import marking
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import engine_of, transaction
from postpurchase.store.models import Channel, Touchpoint, TouchpointStatus

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 15:00 in Paris: no quiet hours
SHORT_LEASE = timedelta(seconds=2)


def _due(store, *channels):
    """One due delivery check-in per channel, each for its own customer; their ids."""
    ids = []
    with transaction(store) as session:
        for channel in channels:
            customer = add_customer(session)
            order = add_order(session, customer)
            ids.append(
                add_touchpoint(session, customer, order, "delivery_checkin", channel, NOW).id
            )
    return ids


def _claim(store, worker, now, lease):
    with transaction(store) as session:
        return claim_due_touchpoints(session, worker=worker, now=now, limit=100, lease=lease)


def _rows(store, ids):
    with store() as session:
        rows = {t.id: t for t in session.query(Touchpoint).filter(Touchpoint.id.in_(ids))}
        return [rows[i] for i in ids]


class _Background:
    """run_chunk on another thread, so the test can act while a send hangs."""

    def __init__(self, dispatcher, worker, ids):
        self.result: dict[str, int] | None = None
        self._thread = threading.Thread(target=self._run, args=(dispatcher, worker, ids))
        self._thread.start()

    def _run(self, dispatcher, worker, ids):
        self.result = dispatcher.run_chunk(worker, ids)

    def join(self):
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()
        return self.result


def test_answers_that_arrive_after_the_lease_ran_out_still_record_sent(
    store, make_dispatcher, fake_sendgrid, fake_twilio
):
    ids = _due(store, Channel.EMAIL, Channel.EMAIL, Channel.SMS)
    hold = threading.Event()
    reached = [threading.Event() for _ in ids]
    fake_sendgrid.fail_next(*(Fault(reached=r, hold=hold) for r in reached[:2]))
    fake_twilio.fail_next(Fault(reached=reached[2], hold=hold))
    dispatcher = make_dispatcher(NOW)
    dispatcher.lease = SHORT_LEASE
    chunk = _claim(store, "run-1/0", NOW, SHORT_LEASE)

    running = _Background(dispatcher, "run-1/0", chunk)
    assert all(r.wait(timeout=10) for r in reached)  # all three are with the providers
    # The next run's sweep finds their leases run out and records them unknown.
    assert _claim(store, "run-2/0", NOW + timedelta(seconds=3), SHORT_LEASE) == []
    assert {r.status for r in _rows(store, ids)} == {TouchpointStatus.UNKNOWN}
    hold.set()  # the providers answer, late

    assert running.join() == {"sent": 3}
    rows = _rows(store, ids)
    assert [r.status for r in rows] == [TouchpointStatus.SENT] * 3
    sent_ids = {int(m["custom_args"]["touchpoint_id"]): m["message_id"] for m in fake_sendgrid.sent}
    assert [r.provider_message_id for r in rows] == [
        sent_ids[ids[0]],
        sent_ids[ids[1]],
        fake_twilio.sent[0]["sid"],
    ]
    assert all(r.reason is None for r in rows)


def test_a_row_lost_while_an_earlier_send_hangs_is_not_sent(store, make_dispatcher, fake_sendgrid):
    ids = _due(store, Channel.EMAIL, Channel.EMAIL, Channel.EMAIL)
    hold, reached = threading.Event(), threading.Event()
    fake_sendgrid.fail_next(Fault(reached=reached, hold=hold))
    dispatcher = make_dispatcher(NOW)
    dispatcher.lease = SHORT_LEASE
    dispatcher.send_concurrency = 1
    chunk = _claim(store, "run-1/0", NOW, SHORT_LEASE)

    running = _Background(dispatcher, "run-1/0", chunk)
    assert reached.wait(timeout=10)
    # The first send hangs past the lease: the next run takes the two rows not yet sent.
    assert _claim(store, "run-2/0", NOW + timedelta(seconds=3), SHORT_LEASE) == ids[1:]
    hold.set()

    assert running.join() == {"sent": 1}
    assert [int(m["custom_args"]["touchpoint_id"]) for m in fake_sendgrid.sent] == ids[:1]
    first, *taken = _rows(store, ids)
    assert first.status is TouchpointStatus.SENT
    assert [(r.status, r.claimed_by) for r in taken] == [(TouchpointStatus.CLAIMED, "run-2/0")] * 2


def test_a_late_answer_never_overwrites_another_workers_row(store, make_dispatcher, fake_sendgrid):
    [tp] = _due(store, Channel.EMAIL)
    hold, reached = threading.Event(), threading.Event()
    fake_sendgrid.fail_next(Fault(reached=reached, hold=hold))
    dispatcher = make_dispatcher(NOW)
    chunk = _claim(store, "run-1/0", NOW, SHORT_LEASE)

    running = _Background(dispatcher, "run-1/0", chunk)
    assert reached.wait(timeout=10)
    with transaction(store) as session:  # e.g. an operator re-planned it for another run
        row = session.get(Touchpoint, tp)
        row.status, row.claimed_by = TouchpointStatus.CLAIMED, "run-9/0"
    hold.set()

    assert running.join() == {}
    [row] = _rows(store, [tp])
    assert (row.status, row.claimed_by, row.provider_message_id) == (
        TouchpointStatus.CLAIMED,
        "run-9/0",
        None,
    )


@dataclass
class _Time:
    """One clock for the dispatcher and its rate limiter; a limiter's wait moves it."""

    now: datetime
    on_wait: object = None

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return (self.now - NOW).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        if callable(self.on_wait):
            self.on_wait(self.now)


def test_a_rate_limited_chunk_keeps_its_rows_past_the_lease(store, make_dispatcher, fake_twilio):
    # One SMS every 200 s (one sender shared by many chunks): three take 400 s, more than the
    # 300 s lease. Each minute in between, the next run's claim looks for expired rows.
    ids = _due(store, Channel.SMS, Channel.SMS, Channel.SMS)
    clock = _Time(NOW)
    stolen: list[int] = []
    clock.on_wait = lambda now: stolen.extend(
        _claim(store, "next-run/0", now, timedelta(minutes=5))
    )
    dispatcher = make_dispatcher(NOW)
    dispatcher.clock = clock.wall
    dispatcher.send_concurrency = 1
    dispatcher.sms_limiter = LocalRateLimiter(1 / 200, clock=clock.monotonic, sleep=clock.sleep)
    chunk = _claim(store, "run-1/0", NOW, timedelta(minutes=5))

    assert dispatcher.run_chunk("run-1/0", chunk) == {"sent": 3}
    assert clock.now == NOW + timedelta(seconds=400)
    assert stolen == []
    assert [r.provider_message_id for r in _rows(store, ids)] == [
        m["sid"] for m in fake_twilio.sent
    ]


class _LimiterThatWaits:
    """A shared limiter that keeps every send of the chunk waiting until the test lets go."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def acquire(self, cost: float = 1.0) -> None:
        self.entered.set()
        assert self.release.wait(timeout=30)


def test_a_chunk_whose_sends_all_wait_keeps_its_rows(store, make_dispatcher, fake_twilio):
    [tp] = _due(store, Channel.SMS)
    clock = _Time(NOW)
    limiter = _LimiterThatWaits()
    dispatcher = make_dispatcher(NOW)
    dispatcher.clock = clock.wall
    dispatcher.sms_limiter = limiter
    dispatcher.record_after = 0.01
    chunk = _claim(store, "run-1/0", NOW, timedelta(minutes=5))

    running = _Background(dispatcher, "run-1/0", chunk)
    try:
        assert limiter.entered.wait(timeout=10)
        clock.now = NOW + timedelta(seconds=200)  # over a third of the lease: renewal is due
        renewed = NOW + timedelta(seconds=500)
        for _ in range(1000):  # the waiting task renews on its own; wait for that, not a time
            if _rows(store, [tp])[0].lease_until == renewed:
                break
            threading.Event().wait(0.01)
        assert _rows(store, [tp])[0].lease_until == renewed
        # The next run, after the claim's own lease would have run out, finds nothing to take.
        assert _claim(store, "run-2/0", NOW + timedelta(seconds=350), timedelta(minutes=5)) == []
    finally:
        limiter.release.set()

    assert running.join() == {"sent": 1}
    assert len(fake_twilio.sent) == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_dead_redis_still_sends_everything(store, make_dispatcher, fake_sendgrid, fake_twilio):
    ids = _due(store, Channel.EMAIL, Channel.SMS, Channel.EMAIL)
    dead = f"redis://127.0.0.1:{_closed_port()}/13"
    dispatcher = make_dispatcher(NOW)
    dispatcher.email_limiter = rate_limiter(dead, "email", 1000)
    dispatcher.sms_limiter = rate_limiter(dead, "sms", 1000)

    assert dispatcher.run_chunk("w", _claim(store, "w", NOW, timedelta(minutes=5))) == {"sent": 3}
    assert [r.status for r in _rows(store, ids)] == [TouchpointStatus.SENT] * 3
    assert len(fake_sendgrid.sent) == 2 and len(fake_twilio.sent) == 1


class _LimiterThatFails:
    def acquire(self, cost: float = 1.0) -> None:
        raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


def test_a_failing_limiter_puts_the_message_back_instead_of_unknown(
    store, make_dispatcher, fake_sendgrid
):
    [tp] = _due(store, Channel.EMAIL)
    dispatcher = make_dispatcher(NOW)
    dispatcher.email_limiter = _LimiterThatFails()

    assert dispatcher.run_chunk("w", _claim(store, "w", NOW, timedelta(minutes=5))) == {
        "retrying": 1
    }
    [row] = _rows(store, [tp])
    assert row.status is TouchpointStatus.PLANNED
    assert row.due_at == NOW + timedelta(minutes=5)
    assert row.reason.startswith("rate limiter failed: ConnectionError")
    assert fake_sendgrid.requests == []


def test_a_database_error_at_the_marks_stops_the_chunk_before_anything_is_sent(
    store, make_dispatcher, fake_sendgrid, monkeypatch
):
    ids = _due(store, Channel.EMAIL, Channel.EMAIL)
    dispatcher = make_dispatcher(NOW)
    claimed = _claim(store, "w", NOW, timedelta(minutes=5))
    engine = engine_of(store)

    def refuse_marks(conn, cursor, statement, *_):  # the sending marks, and only them
        if statement.startswith("UPDATE") and "RETURNING" in statement:
            raise RuntimeError("database away")

    def refuse_commit(*_args, **_kwargs):
        raise RuntimeError("database away")

    # On PostgreSQL a wave's commit is one statement the driver runs itself, out of sight
    # of the engine's events.
    monkeypatch.setattr(marking, "release_and_mark", refuse_commit)
    event.listen(engine, "before_cursor_execute", refuse_marks)
    try:
        with pytest.raises(RuntimeError, match="database away"):
            dispatcher.run_chunk("w", claimed)
    finally:
        event.remove(engine, "before_cursor_execute", refuse_marks)
    # raised from the sending threads into the chunk's: nothing went out, and the rows are
    # still only claimed, so the next claim sends them
    assert fake_sendgrid.requests == []
    assert [r.status for r in _rows(store, ids)] == [TouchpointStatus.CLAIMED] * 2


class _LimiterThatFailsOnce:
    def __init__(self) -> None:
        self.calls = 0

    def acquire(self, cost: float = 1.0) -> None:
        self.calls += 1
        if self.calls == 1:
            raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


def test_a_limiter_failing_for_one_message_does_not_hold_back_its_wave(
    store, make_dispatcher, fake_sendgrid
):
    ids = _due(store, Channel.EMAIL, Channel.EMAIL, Channel.EMAIL)
    dispatcher = make_dispatcher(NOW)
    dispatcher.email_limiter = _LimiterThatFailsOnce()

    assert dispatcher.run_chunk("w", _claim(store, "w", NOW, timedelta(minutes=5))) == {
        "retrying": 1,
        "sent": 2,
    }
    rows = _rows(store, ids)
    assert sorted(r.status for r in rows) == sorted(
        [TouchpointStatus.PLANNED, TouchpointStatus.SENT, TouchpointStatus.SENT]
    )
    assert len(fake_sendgrid.sent) == 2


def test_no_message_of_a_wave_is_marked_while_one_waits_for_its_limiter(
    store, make_dispatcher, fake_sendgrid
):
    ids = _due(store, Channel.EMAIL, Channel.EMAIL, Channel.EMAIL)
    seen: list[set[TouchpointStatus]] = []

    class _Watching:
        def acquire(self, cost: float = 1.0) -> None:
            seen.append({r.status for r in _rows(store, ids)})

    dispatcher = make_dispatcher(NOW)
    dispatcher.email_limiter = _Watching()

    assert dispatcher.run_chunk("w", _claim(store, "w", NOW, timedelta(minutes=5))) == {"sent": 3}
    assert seen == [{TouchpointStatus.CLAIMED}] * 3


def _renewals(store):
    return statements_sent(
        engine_of(store),
        lambda statement: statement.startswith("UPDATE touchpoints SET lease_until"),
    )


def test_a_chunk_run_as_it_is_claimed_does_not_renew_its_rows(
    store, make_dispatcher, fake_sendgrid
):
    """Its rows were leased by the claim a moment ago: renewing them all at its first write was
    a row update per message for nothing."""
    ids = _due(store, Channel.EMAIL, Channel.EMAIL, Channel.EMAIL)
    dispatcher = make_dispatcher(NOW + timedelta(seconds=5))
    chunk = _claim(store, "run-1/0", NOW, dispatcher.lease)

    with _renewals(store) as renewals:
        assert dispatcher.run_chunk("run-1/0", chunk) == {"sent": 3}
    assert renewals == []
    assert len(fake_sendgrid.sent) == 3
    assert all(row.status == TouchpointStatus.SENT for row in _rows(store, ids))


def test_a_chunk_that_waited_since_its_claim_renews_its_rows_first(
    store, make_dispatcher, fake_sendgrid
):
    """Two minutes after the claim, more than a third of its five-minute lease has passed:
    the rows still to be sent get a whole lease again at the chunk's first write."""
    _due(store, Channel.EMAIL, Channel.EMAIL)
    dispatcher = make_dispatcher(NOW + timedelta(minutes=2))
    chunk = _claim(store, "run-1/0", NOW, dispatcher.lease)

    with _renewals(store) as renewals:
        assert dispatcher.run_chunk("run-1/0", chunk) == {"sent": 2}
    assert len(renewals) == 1
