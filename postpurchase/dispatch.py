"""Sending due touchpoints: claim them in chunks, gate, render, send, record the outcome.

``claim_chunks`` takes due touchpoints in chunks, each under its own claimant name, so a mapped
task per chunk can run on any worker. ``Dispatcher.run_chunk`` then decides each touchpoint:

- skipped (with the reason): cancel rules against the order's state now, no address, consent,
  suppression, smart sending;
- deferred back to ``planned`` at the end of the customer's quiet hours (SMS only);
- sent (provider message id, ``sent_at``), failed (the provider's message) or unknown.

At most once: right before a message goes out its touchpoint is marked ``sending`` (and
committed), after the rate limiter let it through and only if the worker still holds the row;
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

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Literal, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from postpurchase import gates
from postpurchase.catalogue.products import CatalogueEntry, Key, catalogue_entries
from postpurchase.channels.delivery import send_with_retries
from postpurchase.channels.messages import EmailSender, OutgoingEmail, OutgoingSms, SmsSender
from postpurchase.channels.ratelimit import RateLimiter
from postpurchase.consent import EmailMarketingRule
from postpurchase.exceptions import (
    PermanentProviderError,
    RecipientOptedOut,
    TransientProviderError,
    UnknownOutcome,
)
from postpurchase.feedback import opt_out_sms
from postpurchase.messages.context import (
    LoyaltyFigures,
    ShopProfile,
    build_context,
    loyalty_figures,
)
from postpurchase.messages.rendering import MessageRenderer, RenderedEmail, RenderedSms
from postpurchase.store.claims import (
    claim_due_touchpoints,
    mark_sending,
    release_each,
    renew_leases,
)
from postpurchase.store.database import SessionFactory, reading, transaction
from postpurchase.store.models import (
    Channel,
    Customer,
    Order,
    Suppression,
    Touchpoint,
    TouchpointStatus,
)

log = logging.getLogger(__name__)

# Rows a chunk's worker holds: claimed, or being handed to the provider by an earlier try.
_HELD = (TouchpointStatus.CLAIMED, TouchpointStatus.SENDING)
_RECORD_GROUP = 50  # outcomes decided without sending, recorded per commit


class MessageSpec(Protocol):
    """What dispatch needs from a campaign (the campaign config satisfies it).

    ``cancel_on``: order states (see ``journey.ORDER_STATES``) in which the message is skipped.
    """

    @property
    def id(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def consent(self) -> Literal["transactional", "marketing"]: ...
    @property
    def smart_sending(self) -> bool: ...
    @property
    def cancel_on(self) -> Collection[str]: ...
    @property
    def expires_after(self) -> timedelta | None: ...
    @property
    def needs_points(self) -> bool: ...  # only for an order that (still) has earned points


CampaignLookup = Callable[[str], MessageSpec | None]


@dataclass(frozen=True)
class GatePolicy:
    quiet_start: clock_time = clock_time(21, 0)
    quiet_end: clock_time = clock_time(9, 0)
    smart_email: timedelta = timedelta(hours=16)
    smart_sms: timedelta = timedelta(hours=24)
    send_attempts: int = 4
    max_retry_wait: float = 60.0
    # A provider still failing after send_attempts (an outage, not a refusal) gets the message
    # back later: up to send_rounds claims in all, waiting round_backoff, then twice as long
    # each time (5 rounds: about 75 minutes of outage), before it is failed.
    send_rounds: int = 5
    round_backoff: timedelta = timedelta(minutes=5)
    # Whether marketing email may go to customers whose consent is unknown (see consent.py).
    email_marketing: EmailMarketingRule = "opt_out"


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
    sender_email: str
    policy: GatePolicy = field(default_factory=GatePolicy)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    # Sends are network waits: a few at once keep a worker busy while one waits for an answer.
    send_concurrency: int = 4
    # Each message's row gets a whole lease when it is marked sending; the chunk's other rows
    # are renewed whenever a third of the lease has passed (see _ChunkLease).
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
        counts: Counter[str] = Counter()
        # Read in a snapshot and render outside any transaction: on SQLite a write transaction
        # holds the lock, and other workers must not wait while this one reads or renders.
        with reading(self.store) as session:
            batch = self._load(session, worker, ids)
        lease = _ChunkLease(worker, [t.id for t in batch.touchpoints], self.lease, self.clock)
        decided: list[_Outcome] = []

        def record(*, waiting: bool = False) -> None:
            # While the sends wait (for the rate limiter, say) the lease is renewed even with
            # nothing to record: the rows stay ours for as long as this task is alive.
            if decided or (waiting and lease.due()):
                with transaction(self.store) as session:
                    lease.renew_if_due(session)
                    counts.update(self._record(session, worker, decided))
                decided.clear()

        def collect(in_flight: set[Future[_Outcome | None]]) -> set[Future[_Outcome | None]]:
            """Take the answers that came back; record them once a few are waiting (every
            send already commits its own mark), or when no other answer came for a while."""
            done, left = wait(in_flight, timeout=self.record_after, return_when=FIRST_COMPLETED)
            decided.extend(o for f in done if (o := f.result()) is not None)
            if len(decided) >= self.send_concurrency or not done or not left:
                record(waiting=not done)
            return left

        # Rendering runs here, a few messages ahead of the sends; each send marks its own row
        # right before it goes out (see _deliver), so a message that waits for the rate
        # limiter is never ``sending`` while it waits.
        with ThreadPoolExecutor(max_workers=self.send_concurrency) as pool:
            in_flight: set[Future[_Outcome | None]] = set()
            for item in self._decide(batch):
                if isinstance(item, _Outcome):
                    decided.append(item)
                    if len(decided) >= _RECORD_GROUP:
                        record()
                    continue
                while len(in_flight) >= 2 * self.send_concurrency:
                    in_flight = collect(in_flight)
                in_flight.add(pool.submit(self._deliver, worker, item, lease))
            while in_flight:
                in_flight = collect(in_flight)
        record()
        return dict(+counts)  # drops kinds whose rows were all lost to the lease sweep

    def _deliver(self, worker: str, pending: _Pending, lease: _ChunkLease) -> _Outcome | None:
        """Wait for the rate limiter, re-check the claim, then send. None: not ours any more.

        Nothing before the mark can have sent the message, so nothing before it may end as
        ``unknown``: a limiter that fails puts the touchpoint back for a later run.
        """
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
            return _Outcome.retrying(
                pending.touchpoint_id, until, f"rate limiter failed: {type(exc).__name__}: {exc}"
            )
        with transaction(self.store) as session:
            lease.renew_if_due(session)
            ours = mark_sending(
                session, pending.touchpoint_id, worker=worker, lease_until=self.clock() + self.lease
            )
        if not ours:  # the lease ran out while it waited and the row went elsewhere
            return None
        return self._send(pending)

    def _record(self, session: Session, worker: str, outcomes: Sequence[_Outcome]) -> Counter[str]:
        """Store outcomes on the rows ``worker`` still holds, one statement per kind; counts
        per kind of the rows actually updated. A provider's answer may also replace the
        ``unknown`` of a row this worker claimed."""
        by_kind: defaultdict[tuple[str, bool], list[tuple[int, dict[str, Any]]]]
        by_kind = defaultdict(list)
        for outcome in outcomes:
            by_kind[(outcome.kind, outcome.answered)].append(
                (outcome.touchpoint_id, outcome.values)
            )
        counts: Counter[str] = Counter()
        for (kind, answered), rows in by_kind.items():
            # The provider's answer is the truth, even when it came after the lease ran out
            # and the sweep recorded the row unknown (still only on a row this worker claimed).
            late_ok = (TouchpointStatus.UNKNOWN,) if answered else ()
            counts[kind] += release_each(
                session, Touchpoint, rows, worker=worker, also_from=late_ok
            )
        for outcome in outcomes:
            if outcome.opted_out_phone:
                opt_out_sms(
                    session,
                    phone=outcome.opted_out_phone,
                    source="twilio:21610",
                    now=self.clock(),
                    reference=f"twilio:21610 on touchpoint:{outcome.touchpoint_id}",
                )
        return counts

    # --- deciding -------------------------------------------------------------------------

    def _load(self, session: Session, worker: str, ids: Sequence[int]) -> _Batch:
        """Everything the gates and templates need for the touchpoints ``worker`` holds."""
        now = self.clock()
        touchpoints = (
            session.execute(
                select(Touchpoint)
                .where(
                    Touchpoint.id.in_(ids),
                    Touchpoint.claimed_by == worker,
                    Touchpoint.status.in_(_HELD),
                )
                .order_by(Touchpoint.due_at, Touchpoint.id)
            )
            .scalars()
            .all()
        )
        customers = _by_id(session, Customer, {t.customer_id for t in touchpoints})
        orders = {
            o.id: o
            for o in session.execute(
                select(Order)
                .where(Order.id.in_({t.order_id for t in touchpoints if t.order_id}))
                .options(selectinload(Order.items))
            ).scalars()
        }
        suppressed = _suppressions(session, customers.values())
        recent = self._recent_sends(session, customers.keys(), now)
        loyalty = loyalty_figures(session, {(t.customer_id, t.order_id) for t in touchpoints})
        # the lines' images and pages, from the product catalogue, in one query
        catalogue = catalogue_entries(
            session,
            ((o.source, i.product_id or "") for o in orders.values() for i in o.items),
        )
        return _Batch(now, touchpoints, customers, orders, suppressed, recent, loyalty, catalogue)

    def _decide(self, batch: _Batch) -> Iterator[_Outcome | _Pending]:
        """Each touchpoint in turn: its outcome if it is not to be sent, else the rendered
        message. Lazy, so rendering interleaves with the sends of earlier groups."""
        now, customers, orders, recent = batch.now, batch.customers, batch.orders, batch.recent
        for tp in batch.touchpoints:
            if tp.status == TouchpointStatus.SENDING:
                yield _Outcome.unknown(tp.id, "an earlier try of this chunk may have sent it")
                continue
            spec = self.lookup(tp.campaign_id)
            customer = customers[tp.customer_id]
            order = orders.get(tp.order_id) if tp.order_id else None
            if spec is None:  # disabling a campaign stops its pending messages
                yield _Outcome.skipped(
                    tp.id, f"campaign {tp.campaign_id!r} is disabled or no longer configured"
                )
                continue
            address = gates.address_of(customer, tp.channel)
            reason = (
                gates.expiry_gate(tp.due_at, now, spec.expires_after)
                or gates.order_gate(order, spec.cancel_on)
                or gates.points_gate(
                    spec.needs_points, batch.loyalty[(tp.customer_id, tp.order_id)].points_earned
                )
                or gates.consent_gate(
                    customer, tp.channel, spec.consent, email_marketing=self.policy.email_marketing
                )
                or _suppression_reason(batch.suppressed, tp.channel, address)
            )
            if reason is None and tp.channel is Channel.SMS:
                zone = gates.customer_zone(customer.time_zone, self.shop.default_time_zone)
                resume = gates.next_allowed_time(
                    now, zone, quiet_start=self.policy.quiet_start, quiet_end=self.policy.quiet_end
                )
                if resume is not None:
                    yield _Outcome.deferred(tp.id, resume)
                    continue
            if reason is None and spec.smart_sending:
                reason = self._smart_sending_reason(recent, tp, now)
            if reason is not None:
                yield _Outcome.skipped(tp.id, reason)
                continue
            try:
                context = build_context(
                    self.shop,
                    touchpoint=tp,
                    customer=customer,
                    order=order,
                    loyalty=batch.loyalty[(tp.customer_id, tp.order_id)],
                    catalogue=batch.catalogue,
                )
                rendered = self.renderer.render(
                    tp.channel.value, spec.template, context, marketing=spec.consent == "marketing"
                )
            except Exception as exc:  # a broken template fails this message, not the chunk
                yield _Outcome.failed(
                    tp.id, f"rendering {spec.template}: {type(exc).__name__}: {exc}"
                )
                continue
            if self._counts_for_smart_sending(spec, tp.channel):
                recent[(tp.customer_id, tp.channel)].append(now)
            yield _Pending(
                tp.id,
                tp.campaign_id,
                tp.channel,
                address or "",
                customer,
                rendered,
                context["links"]["unsubscribe"],
                tp.attempts,
            )

    def _recent_sends(
        self, session: Session, customer_ids: Collection[int], now: datetime
    ) -> defaultdict[tuple[int, Channel], list[datetime]]:
        """Send times within the smart-sending windows that count, per customer and channel."""
        since = now - max(self.policy.smart_email, self.policy.smart_sms)
        rows = session.execute(
            select(
                Touchpoint.customer_id,
                Touchpoint.channel,
                Touchpoint.campaign_id,
                Touchpoint.sent_at,
            ).where(
                Touchpoint.customer_id.in_(customer_ids),
                Touchpoint.status == TouchpointStatus.SENT,
                Touchpoint.sent_at >= since,
            )
        ).all()
        recent: defaultdict[tuple[int, Channel], list[datetime]] = defaultdict(list)
        for customer_id, channel, campaign_id, sent_at in rows:
            if sent_at is not None and self._counts_for_smart_sending(
                self.lookup(campaign_id), channel
            ):
                recent[(customer_id, channel)].append(sent_at)
        return recent

    @staticmethod
    def _counts_for_smart_sending(spec: MessageSpec | None, channel: Channel) -> bool:
        # Email: marketing emails count (order updates do not); SMS: every SMS counts.
        return channel is Channel.SMS or spec is None or spec.consent == "marketing"

    def _smart_sending_reason(
        self,
        recent: defaultdict[tuple[int, Channel], list[datetime]],
        tp: Touchpoint,
        now: datetime,
    ) -> str | None:
        window = self.policy.smart_email if tp.channel is Channel.EMAIL else self.policy.smart_sms
        last = max(
            (t for t in recent[(tp.customer_id, tp.channel)] if t > now - window), default=None
        )
        if last is None:
            return None
        hours = window.total_seconds() / 3600
        what = "an email" if tp.channel is Channel.EMAIL else "an SMS"
        return f"smart sending: customer already got {what} in the last {hours:g} h"

    # --- sending ----------------------------------------------------------------------------

    def _send(self, pending: _Pending) -> _Outcome:
        rendered = pending.rendered
        try:
            if isinstance(rendered, RenderedEmail):
                email = OutgoingEmail(
                    touchpoint_id=pending.touchpoint_id,
                    campaign_id=pending.campaign_id,
                    to_email=pending.address,
                    to_name=pending.customer.first_name,
                    from_email=self.sender_email,
                    from_name=self.shop.name,
                    subject=rendered.subject,
                    html=rendered.html,
                    text=rendered.text,
                    unsubscribe_url=pending.unsubscribe_url,
                )
                message_id = send_with_retries(
                    lambda: self.email.send_email(email),
                    attempts=self.policy.send_attempts,
                    max_wait=self.policy.max_retry_wait,
                    sleep=self.sleep,
                )
            else:
                sms = OutgoingSms(
                    touchpoint_id=pending.touchpoint_id,
                    campaign_id=pending.campaign_id,
                    to=pending.address,
                    body=rendered.body,
                    segments=rendered.segments.segments,
                )
                message_id = send_with_retries(
                    lambda: self.sms.send_sms(sms),
                    attempts=self.policy.send_attempts,
                    max_wait=self.policy.max_retry_wait,
                    sleep=self.sleep,
                )
        except RecipientOptedOut as exc:
            outcome = _Outcome.failed(pending.touchpoint_id, str(exc), answered=True)
            outcome.opted_out_phone = pending.address
            return outcome
        except UnknownOutcome as exc:
            return _Outcome.unknown(pending.touchpoint_id, str(exc))
        except TransientProviderError as exc:
            return self._after_outage(pending, exc)
        except PermanentProviderError as exc:
            return _Outcome.failed(pending.touchpoint_id, str(exc), answered=True)
        except Exception as exc:
            # A bug or an unforeseen SDK error: whether the message left is not known, so it is
            # recorded unknown (never sent again) and the rest of the group still goes out.
            log.exception("touchpoint %d: unexpected error while sending", pending.touchpoint_id)
            return _Outcome.unknown(
                pending.touchpoint_id, f"unexpected {type(exc).__name__} while sending: {exc}"
            )
        return _Outcome.sent(pending.touchpoint_id, message_id, self.clock())

    def _after_outage(self, pending: _Pending, exc: TransientProviderError) -> _Outcome:
        """The provider kept failing: try again in a later run, or give up after the rounds."""
        rounds = pending.claims
        if rounds >= self.policy.send_rounds:
            return _Outcome.failed(pending.touchpoint_id, f"{exc}; gave up after {rounds} rounds")
        until = self.clock() + self.policy.round_backoff * 2 ** max(rounds - 1, 0)
        return _Outcome.retrying(pending.touchpoint_id, until, f"round {rounds}: {exc}")


class _ChunkLease:
    """Keeps a chunk's rows with its worker while the chunk is worked through.

    A chunk of SMS paced at one segment a second, shared by many chunks, can take far longer
    than one lease; rows still waiting would otherwise be claimed by the next run. Renewing at
    every write would cost a row update per message per row, so it is done once a third of the
    lease has passed, in whatever transaction the chunk writes next (or in one of its own when
    every send is waiting). Rows being sent are renewed too: a slow answer keeps its row.
    """

    def __init__(
        self, worker: str, ids: Sequence[int], lease: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.worker = worker
        self.ids = list(ids)
        self.lease = lease
        self.clock = clock
        # None: renew at the first write, as the chunk may have waited since its claim
        self._renewed: datetime | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        if not self.ids:
            return False
        with self._lock:
            return self._renewed is None or self.clock() - self._renewed >= self.lease / 3

    def renew_if_due(self, session: Session) -> None:
        now = self.clock()
        with self._lock:
            if self._renewed is not None and now - self._renewed < self.lease / 3:
                return
            self._renewed = now
        renew_leases(session, Touchpoint, self.ids, worker=self.worker, until=now + self.lease)


@dataclass
class _Pending:
    touchpoint_id: int
    campaign_id: str
    channel: Channel
    address: str
    customer: Customer
    rendered: RenderedEmail | RenderedSms
    unsubscribe_url: str
    claims: int  # how many times the touchpoint was claimed, this time included


@dataclass
class _Outcome:
    touchpoint_id: int
    kind: str  # sent, skipped, deferred, retrying, failed, unknown
    values: dict[str, Any]
    opted_out_phone: str | None = None
    answered: bool = False  # the provider said what became of it: true even if late

    @classmethod
    def sent(cls, tp: int, message_id: str, at: datetime) -> _Outcome:
        values = {
            "status": TouchpointStatus.SENT,
            "provider_message_id": message_id,
            "sent_at": at,
            "reason": None,
        }
        return cls(tp, "sent", values, answered=True)

    @classmethod
    def skipped(cls, tp: int, reason: str) -> _Outcome:
        return cls(tp, "skipped", {"status": TouchpointStatus.SKIPPED, "reason": reason})

    @classmethod
    def failed(cls, tp: int, reason: str, *, answered: bool = False) -> _Outcome:
        values = {"status": TouchpointStatus.FAILED, "reason": reason}
        return cls(tp, "failed", values, answered=answered)

    @classmethod
    def unknown(cls, tp: int, reason: str) -> _Outcome:
        return cls(tp, "unknown", {"status": TouchpointStatus.UNKNOWN, "reason": reason})

    @classmethod
    def deferred(cls, tp: int, until: datetime) -> _Outcome:
        values = {
            "status": TouchpointStatus.PLANNED,
            "due_at": until,
            "attempts": 0,
            "claimed_by": None,
            "reason": f"deferred by quiet hours to {until.isoformat(timespec='minutes')}",
        }
        return cls(tp, "deferred", values)

    @classmethod
    def retrying(cls, tp: int, until: datetime, reason: str) -> _Outcome:
        # attempts is kept: it counts the rounds, and bounds them
        values = {
            "status": TouchpointStatus.PLANNED,
            "due_at": until,
            "claimed_by": None,
            "reason": f"{reason}; next try {until.isoformat(timespec='minutes')}",
        }
        return cls(tp, "retrying", values)


@dataclass(frozen=True)
class _Batch:
    now: datetime
    touchpoints: Sequence[Touchpoint]
    customers: dict[int, Customer]
    orders: dict[int, Order]
    suppressed: dict[tuple[Channel, str], str]
    recent: defaultdict[tuple[int, Channel], list[datetime]]
    loyalty: dict[tuple[int, int | None], LoyaltyFigures]
    catalogue: dict[Key, CatalogueEntry]


def _by_id(session: Session, model: Any, ids: Collection[int]) -> dict[int, Any]:
    return {
        row.id: row for row in session.execute(select(model).where(model.id.in_(ids))).scalars()
    }


def _suppressions(
    session: Session, customers: Collection[Customer]
) -> dict[tuple[Channel, str], str]:
    emails = {a for c in customers if (a := gates.address_of(c, Channel.EMAIL))}
    phones = {a for c in customers if (a := gates.address_of(c, Channel.SMS))}
    rows = session.execute(
        select(Suppression.channel, Suppression.address, Suppression.reason).where(
            Suppression.lifted_at.is_(None),
            Suppression.address.in_(emails | phones),
        )
    ).all()
    return {(channel, address): reason for channel, address, reason in rows}


def _suppression_reason(
    suppressed: dict[tuple[Channel, str], str], channel: Channel, address: str | None
) -> str | None:
    reason = suppressed.get((channel, address or ""))
    return f"suppressed ({reason})" if reason else None


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
                Touchpoint.status.in_(_HELD),
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
