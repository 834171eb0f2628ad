"""Running dispatch: claim due touchpoints in chunks, then decide, send and record each chunk.

``claim_chunks`` takes due touchpoints in chunks, each under its own claimant name, so a mapped
task per chunk can run on any worker. ``Dispatcher.run_chunk`` then decides each touchpoint:

- skipped (with the reason): cancel rules against the order's state now, no address, consent,
  suppression, smart sending;
- deferred back to ``planned`` at the end of the customer's quiet hours (SMS only);
- sent (provider message id, ``sent_at``), failed (the provider's message) or unknown.

At most once: right before a message goes out its touchpoint is marked ``sending`` (and
committed; the messages of a wave of sends share the commit, see ``marking``), after the
rate limiter let it through and only if the worker still holds the row;
a row lost meanwhile (lease ran out, claimed by another run) is not sent. If the task dies and
is retried, a ``sending`` touchpoint is recorded ``unknown`` instead of being sent again; if
nobody retries it, the claim lease runs out and the claim sweep records it ``unknown``, while
the rows the dead task had not reached yet are claimed again and sent (see
``store.claims``). A provider's answer that arrives after the sweep still records what
happened (sent with its id, or the refusal): the truth replaces ``unknown``.

Only what can have reached the provider may end ``unknown``: a rate limiter that fails (Redis
away and no fallback) puts the touchpoint back for a later run instead.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from queue import Empty, SimpleQueue
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postpurchase.channels.ratelimit import RateLimiter
from postpurchase.channels.senders import EmailFlight, EmailSender, SmsSender, WaveEmailSender
from postpurchase.dispatch.deciding import (
    Batch,
    CampaignLookup,
    GatePolicy,
    decide_batch,
    load_batch,
)
from postpurchase.dispatch.marking import ChunkWriter, MarkWave
from postpurchase.dispatch.outcomes import HELD, Outcome, Pending, ShopOutlet
from postpurchase.dispatch.sending import ChunkLease, outgoing_email, send_message
from postpurchase.exceptions import TransientProviderError
from postpurchase.messages.context import ShopProfile
from postpurchase.messages.rendering import MessageRenderer, RenderedEmail, RenderedSms
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import SessionFactory, reading, transaction
from postpurchase.store.models import Touchpoint

log = logging.getLogger(__name__)

_RECORD_GROUP = 50  # outcomes decided without sending, recorded per commit


@dataclass
class Dispatcher:
    """Everything a chunk needs, injected: tests swap the senders, clock and sleep."""

    store: SessionFactory
    lookup: CampaignLookup
    renderer: MessageRenderer
    shop: ShopProfile
    email: EmailSender
    sms: SmsSender
    email_limiter: RateLimiter
    sms_limiter: RateLimiter
    policy: GatePolicy = field(default_factory=GatePolicy)
    # The configured shops by key; any other key (and '') is the default shop, made of
    # lookup, shop, email and sms above.
    shops: Mapping[str, ShopOutlet] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    # Sends are network waits: a few at once keep a worker busy while one waits for an answer.
    # It is also the size of a wave, and a wave is one commit: 8 rather than 4 halved the
    # commits per message (about a tenth of a worker's CPU and a quarter of the database's
    # per message, measured on 2 cores against a local provider), where 2 doubled them; 16
    # rather than 8 halved them again (a tenth of a worker's CPU, a fifth of the database's).
    # 32 rather than 16 no longer pays: since a wave's commit became one statement
    # (store.wave_commit) it cut 0.6% of a worker's instructions per message and 7% of the
    # database's, under 2% of the two together (callgrind: one worker, 4,000 sends from a
    # table of 50,000), for twice the messages left ``unknown`` when a worker dies mid-wave
    # and twice the connections kept open to the provider.
    send_concurrency: int = 16
    # Each message's row gets a whole lease when it is marked sending; the chunk's other rows
    # are renewed whenever a third of the lease has passed (see ChunkLease).
    lease: timedelta = timedelta(minutes=5)
    # Seconds an answer waits at most to be recorded (and how often a waiting chunk looks at
    # its lease).
    record_after: float = 1.0

    def run_chunk(self, worker: str, ids: Sequence[int]) -> dict[str, int]:
        """Decide, send and record every touchpoint of the chunk ``worker`` holds.

        Returns counts per outcome (sent, skipped, deferred, failed, unknown). Touchpoints no
        longer held by ``worker`` (lease ran out, taken by another) are left alone and never
        sent.
        """
        # What is alive when the chunk starts (modules, templates, the SDK, the engine) is
        # kept out of the garbage collector's full collections until it ends: the chunk's
        # garbage triggers some, and each walked all of that again (three quarters of the
        # collector's time, a fortieth of a worker's CPU). Freezing is process-wide, which
        # suits the one caller, the dispatch task (a process of its own, or one task at a
        # time in it), as it suits the drain (processing.drain).
        gc.freeze()
        try:
            return self._run_chunk(worker, ids)
        finally:
            gc.unfreeze()

    def _run_chunk(self, worker: str, ids: Sequence[int]) -> dict[str, int]:
        # Read in a snapshot and render outside any transaction: on SQLite a write transaction
        # holds the lock, and other workers must not wait while this one reads or renders.
        with reading(self.store) as session:
            batch = self._load(session, worker, ids)
        lease = ChunkLease(
            worker,
            [t.id for t in batch.touchpoints],
            self.lease,
            self.clock,
            leased_until=min(
                (t.lease_until for t in batch.touchpoints if t.lease_until is not None),
                default=None,
            ),
        )
        writer = ChunkWriter(self.store, lease, self.lease, self.clock)
        # Rendering runs here, a wave ahead of the sends; each wave's marks are committed
        # right before its messages go out (see marking), so a message that waits for the
        # rate limiter is never ``sending`` while it waits.
        try:
            with ThreadPoolExecutor(max_workers=self.send_concurrency) as pool:
                sends = _Sends(pool, writer, self, self.send_concurrency, self.record_after)
                try:
                    ready: list[Pending] = []
                    for item in self._decide(batch):
                        if isinstance(item, Outcome):
                            writer.add([item])
                            if writer.waiting() >= _RECORD_GROUP:
                                writer.record()
                            continue
                        ready.append(item)
                        if len(ready) == self.send_concurrency:  # a wave's worth: send it
                            sends.launch(ready)
                    if ready:
                        sends.launch(ready)
                    sends.finish()
                finally:
                    sends.close()
            writer.record()
        finally:
            writer.close()
        return dict(+writer.counts)  # drops kinds whose rows were all lost to the lease sweep

    def deliver(self, pending: Pending, wave: MarkWave) -> Outcome | None:
        """Wait for the rate limiter and the wave, then send. None: not ours any more.

        Nothing before the mark can have sent the message, so nothing before it may end as
        ``unknown``: a limiter that fails puts the touchpoint back for a later run.
        """
        try:
            refused = self.admit(pending)
        except BaseException:
            wave.withdraw()
            raise
        if refused is not None:
            wave.withdraw()
            return refused
        if not wave.mark(
            pending.touchpoint_id
        ):  # the lease ran out while it waited and the row went elsewhere
            return None
        return send_message(
            pending,
            policy=self.policy,
            sleep=self.sleep,
            clock=self.clock,
        )

    def admit(self, pending: Pending) -> Outcome | None:
        """Wait for the rate limiter: None when passed, the retrying outcome when it failed."""
        sms = isinstance(pending.rendered, RenderedSms)
        limiter = self.sms_limiter if sms else self.email_limiter
        cost = (
            pending.rendered.segments.segments if isinstance(pending.rendered, RenderedSms) else 1
        )
        try:
            limiter.acquire(cost)
        except Exception as exc:
            log.exception("touchpoint %d: the rate limiter failed", pending.touchpoint_id)
            until = self.clock() + self.policy.round_backoff
            return Outcome.retrying(
                pending.touchpoint_id, until, f"rate limiter failed: {type(exc).__name__}: {exc}"
            )
        return None

    def complete(self, pending: Pending, first: str | Exception) -> Outcome:
        """How ``pending`` ends, its first try made elsewhere (``first``: what it returned
        or raised), the others made here."""
        return send_message(
            pending, policy=self.policy, sleep=self.sleep, clock=self.clock, first=first
        )

    def _load(self, session: Session, worker: str, ids: Sequence[int]) -> Batch:
        """Everything the gates and templates need for the touchpoints ``worker`` holds."""
        return load_batch(
            session, worker, ids, now=self.clock(), lookup=self.lookup, policy=self.policy
        )

    def _decide(self, batch: Batch) -> Iterator[Outcome | Pending]:
        return decide_batch(batch, shops=self.outlet, policy=self.policy, renderer=self.renderer)

    def outlet(self, shop: str) -> ShopOutlet:
        """The outlet of the shop ``shop``: its own when configured, else the default."""
        return self.shops.get(shop.strip().lower()) or self._default_outlet

    @cached_property
    def _default_outlet(self) -> ShopOutlet:
        return ShopOutlet(self.shop, self.lookup, self.email, self.sms)


class _Sends:
    """A chunk's sends in flight: waves of messages, answers taken back.

    A wave of plain emails through a sender that can send them at once
    (``WaveEmailSender.sends_at_once``: SendGrid over its pool) goes out from the chunk's own
    thread: each message passes its rate limiter, the marks are committed, the requests are
    written, and the answers are read when the next wave is ready (the chunk renders it
    meanwhile). With a sending thread per message a worker's threads slept and woke about 7.5
    times per message, mostly queueing for the interpreter lock; sent at once, 0.1, and a
    worker spends a sixth less CPU per message (1.6 ms instead of 1.9 on a loaded machine),
    the fake SendGrid a tenth less (benchmarks.dispatch: 2 workers, PostgreSQL). Any other
    wave (SMS, mixed senders) goes to ``pool``, one message per thread, as do the retries of
    an email whose first try failed for a while (they wait between tries).

    Each thread puts its answer (or what it raised) on a queue the chunk's thread reads:
    waiting on the sends' futures cost a waiter installed on each of them per look.
    """

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        writer: ChunkWriter,
        dispatcher: Dispatcher,
        threads: int,
        record_after: float,
    ) -> None:
        self._pool = pool
        self._writer = writer
        self._dispatcher = dispatcher
        self._threads = threads
        self._record_after = record_after
        self._in_flight = 0  # messages on the threads
        self._answers: SimpleQueue[tuple[Outcome | None, BaseException | None]] = SimpleQueue()
        self._flight: tuple[EmailFlight, list[Pending]] | None = None  # sent at once

    def launch(self, ready: list[Pending]) -> None:
        """Send the first of ``ready`` (taken off it) as one wave, once every answer of the
        wave sent at once before came back and there is a free thread for each message (a
        wave's messages are marked together, so none may wait for a thread once marked,
        and a retry takes one). The answers that came back meanwhile are recorded with the
        wave's marks."""
        wave = ready[: self._threads]
        del ready[: len(wave)]
        self._land()
        self._take(block=False)
        while self._in_flight > self._threads - len(wave):
            self._take(block=True)
        sender = _at_once(wave)
        if sender is not None:
            self._start(wave, sender)
            return
        marks = MarkWave(self._writer, len(wave))
        for pending in wave:
            self._pool.submit(self._send, pending, marks)
            self._in_flight += 1

    def finish(self) -> None:
        """Wait for every answer, recording them a few per commit."""
        self._land()
        while self._in_flight:
            self._take(block=True)
            if self._writer.waiting() >= self._threads or not self._in_flight:
                self._writer.record()

    def close(self) -> None:
        """Drop the answers still to come of the wave sent at once (the chunk failed)."""
        if self._flight is not None:
            self._flight[0].close()
            self._flight = None

    def _start(self, wave: list[Pending], sender: WaveEmailSender) -> None:
        """Send ``wave`` at once from this thread: limiters, marks, then the requests."""
        admitted = []
        for pending in wave:
            refused = self._dispatcher.admit(pending)
            if refused is None:
                admitted.append(pending)
            else:
                self._writer.add([refused])
        if not admitted:
            return
        marked = self._writer.commit([p.touchpoint_id for p in admitted])
        going = [p for p in admitted if p.touchpoint_id in marked]
        if going:
            flight = sender.start_emails([outgoing_email(p) for p in going])
            self._flight = (flight, going)

    def _land(self) -> None:
        """Read the answers of the wave sent at once; what is to be retried goes to a
        thread. When none came for a while, record what waits and renew the lease if due."""
        if self._flight is None:
            return
        flight, going = self._flight
        retries = self._dispatcher.policy.send_attempts > 1
        for answer in flight.answers(quiet=self._record_after):
            if answer is None:
                self._writer.record(renew=True)
                continue
            index, first = answer
            if retries and isinstance(first, TransientProviderError):
                self._pool.submit(self._retry, going[index], first)
                self._in_flight += 1
            else:
                self._writer.add([self._dispatcher.complete(going[index], first)])
        self._flight = None

    def _send(self, pending: Pending, marks: MarkWave) -> None:
        """On a sending thread: deliver, and queue the answer or what it raised."""
        self._queue(lambda: self._dispatcher.deliver(pending, marks))

    def _retry(self, pending: Pending, first: TransientProviderError) -> None:
        """On a sending thread: the tries after ``first`` of a message sent at once."""
        self._queue(lambda: self._dispatcher.complete(pending, first))

    def _queue(self, send: Callable[[], Outcome | None]) -> None:
        try:
            answer = send()
        except BaseException as exc:  # raised again in the chunk's thread, as a future would
            self._answers.put((None, exc))
        else:
            self._answers.put((answer, None))

    def _take(self, *, block: bool) -> None:
        """Take the answers that came back (waiting for one with ``block``). When none came
        for a while, record what waits and renew the lease if due."""
        answers = []
        try:
            if block:
                answers.append(self._answers.get(timeout=self._record_after))
            while True:
                answers.append(self._answers.get(block=False))
        except Empty:
            pass
        self._in_flight -= len(answers)
        self._writer.add(outcome for outcome, _ in answers if outcome is not None)
        for _, error in answers:
            if error is not None:
                raise error
        if block and not answers:
            self._writer.record(renew=True)


def _at_once(wave: list[Pending]) -> WaveEmailSender | None:
    """The sender that sends the whole of ``wave`` at once, if there is one: every message
    an email of the same sender, which can."""
    sender = wave[0].shop.email
    if not isinstance(sender, WaveEmailSender) or not sender.sends_at_once:
        return None
    if any(p.shop.email is not sender or not isinstance(p.rendered, RenderedEmail) for p in wave):
        return None
    return sender


def claim_chunks(
    store: SessionFactory,
    *,
    run_key: str,
    now: datetime,
    chunk_size: int,
    max_chunks: int,
    lease: timedelta,
) -> list[dict[str, Any]]:
    """Claim up to ``max_chunks`` chunks of due touchpoints for one dispatch run.

    Each chunk is ``{"worker": "<run_key>/<n>", "ids": [...]}``. Idempotent per ``run_key``:
    chunks this run claimed before (a retried claim task) are returned again, not re-claimed.
    """
    chunks: list[dict[str, Any]] = []
    with transaction(store) as session:
        held = session.execute(
            select(Touchpoint.claimed_by, Touchpoint.id)
            .where(
                Touchpoint.status.in_(HELD),
                Touchpoint.claimed_by.startswith(f"{run_key}/", autoescape=True),
            )
            .order_by(Touchpoint.id)
        ).all()
        by_worker: defaultdict[str, list[int]] = defaultdict(list)
        for worker, tp_id in held:
            if worker is not None:
                by_worker[worker].append(tp_id)
        chunks = [{"worker": w, "ids": ids} for w, ids in sorted(by_worker.items())]
    for n in range(len(chunks), max_chunks):
        worker = f"{run_key}/{n}"
        with transaction(store) as session:
            ids = claim_due_touchpoints(
                session, worker=worker, now=now, limit=chunk_size, lease=lease
            )
        if not ids:
            break
        chunks.append({"worker": worker, "ids": ids})
    return chunks


def summarize(results: Sequence[dict[str, int]]) -> str:
    """One line with the counts per outcome of all chunks, e.g. for the run's log and XCom."""
    total: Counter[str] = Counter()
    for counts in results:
        total.update(counts)
    order = ("sent", "skipped", "deferred", "retrying", "failed", "unknown")
    parts = [f"{kind} {total.get(kind, 0)}" for kind in order]
    return f"{sum(total.values())} touchpoint(s): " + ", ".join(parts)
