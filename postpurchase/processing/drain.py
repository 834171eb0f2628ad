"""Draining the inbox: claim a batch, upsert, plan, cancel, mark processed; repeat.

Each batch is one transaction: its claim marks the rows ``done`` (``claim_inbox_rows``), and
its upserts and touchpoints commit with that, so a worker killed mid-batch leaves nothing
half-done: the transaction rolls back and the rows are pending again (the work is
idempotent). When a batch fails, its rows are retried one by one, each in a transaction of its
own, so a bad row cannot hold back good ones; a row that still fails stays pending with its
error, its failure counted in a transaction of its own, and is marked ``failed`` once it has
failed ``MAX_ATTEMPTS`` times. A payload that is not a canonical event fails at once: retrying
cannot fix it.
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.campaigns.decisions import Occurrence
from postpurchase.catalogue.products import note_products, store_product_events
from postpurchase.events import EventType
from postpurchase.journey import CANCELLING_EVENTS
from postpurchase.loyalty import ledger
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.ledger_rows import LedgerEvent
from postpurchase.processing.batch import (
    CustomerRecord,
    InboxSummary,
    OrderRecord,
    Records,
    SourcedEvent,
)
from postpurchase.processing.planning import (
    Cancellation,
    cancel_touchpoints,
    order_subject,
    plan_touchpoints,
    tier_subject,
)
from postpurchase.processing.records import upsert_records
from postpurchase.rewards.used_codes import mark_used
from postpurchase.store.database import SessionFactory, cached_key_checks, transaction
from postpurchase.store.inbox_claims import (
    ClaimedRow,
    claim_inbox_rows,
    fail_claimed_inbox_rows,
    reclaim_expired_inbox_rows,
    record_inbox_failure,
)
from postpurchase.store.models import ClaimStatus
from postpurchase.stored_events import read_stored

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
BATCH_SIZE = 1000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _occurrence(
    item: SourcedEvent, order: OrderRecord | None, customer: CustomerRecord | None
) -> Occurrence | None:
    event, kind = item.event, item.kind
    if kind is EventType.TIER_CHANGED:
        if customer is None or event.tier is None:
            return None
        subject = tier_subject(customer.id, event.tier.to_tier, item.occurred_at)
        tier = {"from_tier": event.tier.from_tier, "to_tier": event.tier.to_tier}
        return Occurrence(kind.value, item.occurred_at, customer.id, None, subject, tier)
    if order is None or order.customer_id is None:
        return None
    review = None
    if kind is EventType.REVIEW_SUBMITTED and event.review is not None:
        review = {"rating": event.review.rating, "product_id": event.review.product_id}
    return Occurrence(
        kind.value,
        item.occurred_at,
        order.customer_id,
        order.id,
        order_subject(order.id),
        review=review,
    )


def _implied_occurrence(
    kind: EventType, item: SourcedEvent, order: OrderRecord | None
) -> Occurrence | None:
    """The ``kind`` occurrence that ``item``, of another type, implies: the refund of a new
    refund it names, the payment of an order it first shows paid."""
    if order is None or order.customer_id is None:
        return None
    trigger = kind.value
    return Occurrence(
        trigger, item.occurred_at, order.customer_id, order.id, order_subject(order.id)
    )


def _named_products(items: Sequence[SourcedEvent]) -> Iterator[tuple[str, str, str]]:
    for item in items:
        product = item.event.product
        if product is not None:
            yield item.source, item.shop, product.external_id
        order = item.order
        if order is not None:
            # a plain loop: a generator made per event cost more than the few lines it walks
            for line in order.lines:
                if line.product_id:
                    yield item.source, item.shop, line.product_id


def mark_reward_codes_used(
    session: Session, records: Records, items: Sequence[SourcedEvent]
) -> int:
    """Reward codes on the batch's orders mark their redemptions used (postpurchase.rewards)."""
    uses = []
    for item in items:
        snapshot = item.order
        if snapshot is None or not snapshot.discount_codes:
            continue  # most orders: no code, no need for their record
        order = records.order_for(item)
        if order is not None:
            uses.append((order.id, snapshot.discount_codes, item.occurred_at))
    return mark_used(session, uses) if uses else 0


def _award_points(
    session: Session,
    records: Records,
    items: Sequence[SourcedEvent],
    found: Sequence[tuple[OrderRecord | None, CustomerRecord | None]],
    loyalty: LoyaltyConfig,
) -> int:
    """The batch's points: the ledger's awards and reversals, then sign-up, birthday and
    referral points and tier gifts (postpurchase.rewards). ``found``: each item's order and
    customer (``Records.rows_for``)."""
    changes = ledger.apply_events(
        session,
        [
            LedgerEvent(item.event, order, customer.id, records.refunds_of(order))
            for item, (order, customer) in zip(items, found, strict=True)
            if customer is not None
        ],
        config=loyalty,
    )
    from postpurchase.rewards.batches import apply_batch

    points = sum(change.points for of_event in changes for change in of_event)
    return points + apply_batch(session, records, items, loyalty)


def process_batch(
    session: Session,
    items: Sequence[SourcedEvent],
    config: CampaignConfig,
    *,
    shop_zone: ZoneInfo,
    now: datetime,
    summary: InboxSummary,
    loyalty: LoyaltyConfig | None = None,
) -> None:
    """Upsert, apply loyalty, then plan and cancel touchpoints for ``items``, in the caller's
    transaction.

    ``now`` is the run's clock, for per-event work that needs one. Without a ``loyalty``
    config no points are awarded or reversed.
    """
    # Every product the batch names gets its catalogue row first, in one insert in key order
    # (concurrent drainers then wait for each other in one order, never each for the other):
    # those of product events, and those first seen in order lines, marked unknown for a
    # look-up that runs outside this path.
    note_products(session, _named_products(items))
    store_product_events(
        session,
        [(item.source, item.shop, item.event) for item in items if item.event.product is not None],
    )
    records = upsert_records(session, items)
    # each event's order and customer as the upsert left them, looked up once for what follows
    found = [records.rows_for(item) for item in items]
    # Loyalty comes before planning so that a points_earned message planned now finds its
    # points in the ledger.
    if loyalty is not None:
        summary.points += _award_points(session, records, items, found, loyalty)
    mark_reward_codes_used(session, records, items)
    occurrences: list[Occurrence] = []
    cancellations: list[Cancellation] = []
    for item, (order, customer) in zip(items, found, strict=True):
        occurrence = _occurrence(item, order, customer)
        if occurrence is not None:
            occurrences.append(occurrence)
        kind = item.kind
        cancelling = [kind] if kind in CANCELLING_EVENTS else []
        new_refunds = records.new_refunds.get(item.inbox_id)
        if new_refunds:
            summary.refunds += len(new_refunds)
        if new_refunds and kind is not EventType.ORDER_REFUNDED:
            # A refund the store had not seen, named by an event of another type (a
            # WooCommerce partial refund keeps the order's status): an order.refunded too.
            cancelling.append(EventType.ORDER_REFUNDED)
            refunded = _implied_occurrence(EventType.ORDER_REFUNDED, item, order)
            if refunded is not None:
                occurrences.append(refunded)
        if item.inbox_id in records.newly_paid and kind is not EventType.ORDER_PAID:
            # First seen paid without an order.paid (a WooCommerce order first seen completed):
            # it gets what any paid order gets.
            paid = _implied_occurrence(EventType.ORDER_PAID, item, order)
            if paid is not None:
                occurrences.append(paid)
        if cancelling:
            cancellations += [
                Cancellation(
                    cancel.value,
                    order.id if order is not None else None,
                    customer.id if customer is not None else (order.customer_id if order else None),
                )
                for cancel in cancelling
            ]
    # Cancel before planning; the plan itself skips orders already refunded, cancelled, ...
    summary.cancelled += cancel_touchpoints(session, cancellations, config)
    counts = plan_touchpoints(session, occurrences, config, shop_zone=shop_zone, known=records)
    summary.planned += counts.planned
    summary.skipped.update(counts.skipped)
    # counted by member, then named: an enum's ``.value`` is a property, slow per event
    kinds = Counter(item.kind for item in items)
    summary.events.update({kind.value: n for kind, n in kinds.items()})


def _parse(rows: Sequence[ClaimedRow]) -> tuple[list[SourcedEvent], dict[int, str]]:
    items, invalid = [], {}
    for inbox_id, source, shop, payload, _ in rows:  # unpacked: no attribute read per field
        try:
            event = read_stored(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            invalid[inbox_id] = f"not a canonical event: {where}: {first['msg']}"
            continue
        items.append(SourcedEvent(inbox_id, source, event, shop or ""))
    return items, invalid


BatchProcessor = Callable[..., None]
_P = ParamSpec("_P")


# Young objects the collector lets pile up before it runs, while draining: about what a batch
# of BATCH_SIZE events holds alive at once. With the default (700) it ran some sixty times per
# batch, each time while the batch's events, records and rows were alive (they die with the
# batch, by reference counting, not by the collector), and moved them to older generations
# that it then walked again: about a tenth of a drainer's CPU.
_YOUNG_OBJECTS = 50_000


def _frozen_heap(drain: Callable[_P, InboxSummary]) -> Callable[_P, InboxSummary]:
    """``drain`` with what is alive when it starts (modules, configs, the engine) frozen out
    of the garbage collector's full collections: each batch's garbage triggers some, and they
    walked all of it again each time (a sixth of a drainer's CPU); and with collections of
    young objects made rare enough to come about once per batch (``_YOUNG_OBJECTS``)."""

    @functools.wraps(drain)
    def frozen(*args: _P.args, **kwargs: _P.kwargs) -> InboxSummary:
        thresholds = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(max(thresholds[0], _YOUNG_OBJECTS), *thresholds[1:])
        try:
            return drain(*args, **kwargs)
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    return frozen


@_frozen_heap
def process_inbox(
    factory: SessionFactory,
    config: CampaignConfig,
    *,
    worker: str,
    shop_zone: ZoneInfo,
    clock: Clock = utc_now,
    batch_size: int = BATCH_SIZE,
    time_budget: timedelta | None = None,
    processor: BatchProcessor = process_batch,
    loyalty: LoyaltyConfig | None = None,
) -> InboxSummary:
    """Process pending inbox rows until none is left (or ``time_budget`` is spent).

    Rows an earlier version's worker left claimed are taken back once their lease has run
    out. ``processor`` does the work of one batch (``process_batch``; tests swap it).
    """
    summary = InboxSummary()
    deadline = time.monotonic() + time_budget.total_seconds() if time_budget else None
    with transaction(factory) as session:
        reclaim_expired_inbox_rows(session, now=clock(), max_attempts=MAX_ATTEMPTS)
    run = _BatchRun(factory, config, worker, shop_zone, clock, processor, loyalty)
    last_id = 0  # each claim starts above the previous one (see claim_inbox_rows)
    retried = 0
    while deadline is None or time.monotonic() < deadline:
        batch = _Batch()
        try:
            with transaction(factory) as session:
                run.claim(session, batch, limit=batch_size, after_id=last_id)
                if batch.rows:
                    batch.summary = run(session, batch.items)
        except Exception:
            if not batch.rows:
                raise  # the claim itself failed: nothing to retry row by row
            log.warning(
                "a batch of %d event(s) failed; retrying one by one", len(batch.rows), exc_info=True
            )
            _one_by_one(run, batch, summary)
        else:
            if not batch.rows:
                if summary.retried == retried:
                    break
                # rows sent back to be retried lie behind: one more pass from the start
                retried, last_id = summary.retried, 0
                continue
            summary.add(batch.summary)
            for inbox_id, reason in batch.invalid.items():
                _note_failure(summary, inbox_id, reason)
        last_id = batch.rows[-1].id
    return summary


@dataclass
class _Batch:
    """A claimed batch: its rows, their events, the rows whose payload is not an event."""

    rows: list[ClaimedRow] = field(default_factory=list)
    items: list[SourcedEvent] = field(default_factory=list)
    invalid: dict[int, str] = field(default_factory=dict)
    summary: InboxSummary = field(default_factory=InboxSummary)


def _one_by_one(run: _BatchRun, batch: _Batch, summary: InboxSummary) -> None:
    """After ``batch`` failed (and rolled back): its rows one by one, each claimed again in a
    transaction of its own; a row's failure is recorded on it, never fatal."""
    for inbox_id, reason in batch.invalid.items():
        run.record_failure(inbox_id, reason, summary, max_attempts=0)
    for item in batch.items:
        try:
            with transaction(run.factory) as session:
                if not run.claim(session, _Batch(), limit=1, only=[item.inbox_id]):
                    continue  # another drainer took it meanwhile
                summary.add(run(session, [item]))
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            run.record_failure(item.inbox_id, reason, summary, max_attempts=MAX_ATTEMPTS)


def _note_failure(summary: InboxSummary, inbox_id: int, reason: str) -> None:
    summary.failed += 1
    summary.errors.append(f"inbox event {inbox_id}: {reason}")


@dataclass(frozen=True)
class _BatchRun:
    """Claims rows and processes their events, in the caller's transaction."""

    factory: SessionFactory
    config: CampaignConfig
    worker: str
    shop_zone: ZoneInfo
    clock: Clock
    processor: BatchProcessor
    loyalty: LoyaltyConfig | None

    def claim(self, session: Session, batch: _Batch, **which: Any) -> bool:
        """Claim rows (marked done) into ``batch``; those whose payload is not a canonical
        event are marked failed at once. Whether any row was claimed."""
        batch.rows = claim_inbox_rows(session, worker=self.worker, now=self.clock(), **which)
        batch.items, batch.invalid = _parse(batch.rows)
        fail_claimed_inbox_rows(session, batch.invalid)
        return bool(batch.rows)

    def __call__(self, session: Session, items: Sequence[SourcedEvent]) -> InboxSummary:
        part = InboxSummary()
        # a batch inserts thousands of rows, each checked against the rows it refers to
        with cached_key_checks(session):
            self.processor(
                session,
                items,
                self.config,
                shop_zone=self.shop_zone,
                now=self.clock(),
                summary=part,
                loyalty=self.loyalty,
            )
        return part

    def record_failure(
        self, inbox_id: int, reason: str, summary: InboxSummary, *, max_attempts: int
    ) -> None:
        """Count a failed attempt on the (pending again) row, in a transaction of its own."""
        with transaction(self.factory) as session:
            status = record_inbox_failure(
                session, inbox_id, reason, worker=self.worker, max_attempts=max_attempts
            )
        if status is ClaimStatus.FAILED:
            _note_failure(summary, inbox_id, reason)
        elif status is ClaimStatus.PENDING:
            summary.retried += 1
