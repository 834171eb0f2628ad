"""What a campaigns file would have planned on the last days of real inbox history.

``simulate_campaigns`` answers "what if this file had been live?" before a marketer puts it
live: per campaign, how many touchpoints it would plan, how many later events would cancel,
how many would be planned too late to send, and why the others were not planned, next to the
same counts for the current file computed the same way, so the two compare fairly.

How, so that it cannot drift from production and cannot touch it:

- The processed inbox events of the window are read from the store in pages, each in its own
  short read-only transaction (``history``): nothing is written there and no lock is held
  that intake or processing would wait for.
- They are fed, in inbox order, to the production batch step (``drain.process_batch``:
  upserts, loyalty, cancelling and planning) and the planning follow-ups (assumed
  deliveries, lapsed customers), in a scratch SQLite database per file, built from the
  migrations in a temporary folder that is deleted afterwards. The store's product catalogue
  is copied in, as conditions read it.
- Events are replayed in batches of those production processed within a few hours
  (``history.BATCH_SPAN``); lateness is measured from when production processed each one.
  Earlier events of the orders and customers the window names are replayed first (the
  warm-up), so an order paid before the window is not paid again in it; what the warm-up
  plans is not counted.
- Dispatch is simulated only as time passing: a touchpoint whose due time has passed counts
  as dispatched (a later refund no longer cancels it); one planned already more than its
  campaign's ``expires_after`` past its due time is "too late", as the send-time gate would
  skip it. Consent, suppressions, frequency caps and quiet hours are send-time checks and are
  not simulated.
- Not replayed: rewards issued and points expiring (planned by the rewards and loyalty runs,
  not from the inbox), and win-back for customers with no event in the window.

The candidate comes from ``campaigns.validation.load_campaign_source`` (a file, or the YAML
text of an edited copy, checked in full with file:line errors). The replay takes about as long
as processing those events took: ``progress`` is called after each batch.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.processing.batch import InboxSummary
from postpurchase.processing.drain import process_batch
from postpurchase.processing.followups import plan_assumed_deliveries, plan_lapsed_customers
from postpurchase.processing.history import (
    PAGE_SIZE,
    Batch,
    batches,
    pages_of_ids,
    warm_up_ids,
    window_pages,
    window_size,
)
from postpurchase.store import schema
from postpurchase.store.database import (
    SessionFactory,
    engine_of,
    make_engine,
    reading,
    session_factory,
    transaction,
)
from postpurchase.store.models import (
    Order,
    Product,
    Touchpoint,
    TouchpointStatus,
)

TOO_LATE = "simulated: planned too late to send"

Progress = Callable[[int, int], None]  # (events replayed so far, events in the window)


@dataclass(frozen=True)
class CampaignCounts:
    """What one campaigns file did for one campaign over the window."""

    enabled: bool
    planned: int = 0  # touchpoints planned from the window's events (one per step and channel)
    cancelled: int = 0  # planned touchpoints cancelled by the window's events before due
    too_late: int = 0  # planned already later than expires_after allows: would be skipped
    not_planned: tuple[tuple[str, int], ...] = ()  # (reason, occurrences), most common first


@dataclass(frozen=True)
class CampaignComparison:
    """One campaign in both files; None where a file has no campaign of that id."""

    campaign_id: str
    candidate: CampaignCounts | None
    current: CampaignCounts | None


@dataclass(frozen=True)
class Simulation:
    """The replay of ``events`` processed between ``since`` and ``until`` (UTC)."""

    since: datetime
    until: datetime
    events: int
    warm_up_events: int  # earlier events of the same orders and customers, not counted
    campaigns: tuple[CampaignComparison, ...]  # the candidate file's order, then removed ones


def simulate_campaigns(
    factory: SessionFactory,
    candidate: CampaignConfig,
    current: CampaignConfig,
    *,
    now: datetime,
    days: int,
    shop_zone: ZoneInfo,
    loyalty: LoyaltyConfig | None,
    progress: Progress | None = None,
) -> Simulation:
    """Replay the inbox events processed in the ``days`` before ``now`` against both files.

    Reads the store only (see the module docstring); raises nothing of its own.
    """
    since = now - timedelta(days=days)
    total, subjects = window_size(factory, since, now)
    warm_up = warm_up_ids(factory, since, subjects)
    with tempfile.TemporaryDirectory(prefix="postpurchase-simulation-") as folder:
        replays = _scratch_replays(factory, Path(folder), (candidate, current), shop_zone, loyalty)
        try:
            for batch in batches(pages_of_ids(factory, warm_up)):
                for replay in replays:
                    replay.feed(batch)
            for replay in replays:
                replay.start_counting()
            done = 0
            for batch in batches(window_pages(factory, since, now)):
                for replay in replays:
                    replay.feed(batch)
                done += len(batch.items)
                if progress is not None:
                    progress(done, total)
            candidate_counts, current_counts = (replay.counts() for replay in replays)
        finally:
            for replay in replays:
                engine_of(replay.factory).dispose()
    ids = [c.id for c in candidate.campaigns]
    ids += [c.id for c in current.campaigns if c.id not in ids]
    return Simulation(
        since=since,
        until=now,
        events=total,
        warm_up_events=len(warm_up),
        campaigns=tuple(
            CampaignComparison(i, candidate_counts.get(i), current_counts.get(i)) for i in ids
        ),
    )


def _scratch_replays(
    factory: SessionFactory,
    folder: Path,
    configs: Sequence[CampaignConfig],
    shop_zone: ZoneInfo,
    loyalty: LoyaltyConfig | None,
) -> list[_Replay]:
    """One scratch database per config, migrated, with the store's catalogue copied in."""
    template = folder / "migrated.db"
    engine = make_engine(make_url(f"sqlite:///{template}"))
    schema.upgrade(engine)
    engine.dispose()  # the last connection closed: the file holds the whole schema
    replays = []
    for n, config in enumerate(configs):
        path = folder / f"replay-{n}.db"
        shutil.copyfile(template, path)
        engine = make_engine(make_url(f"sqlite:///{path}"))
        event.listen(engine, "connect", _throwaway)
        replays.append(_Replay(session_factory(engine), config, shop_zone, loyalty))
    last = 0
    names = [
        c.name for c in Product.__table__.columns if c.name not in ("created_at", "updated_at")
    ]
    while True:
        with reading(factory) as session:
            rows = [
                dict(row._mapping)
                for row in session.execute(
                    select(*(Product.__table__.c[name] for name in names))
                    .where(Product.id > last)
                    .order_by(Product.id)
                    .limit(PAGE_SIZE)
                )
            ]
        if not rows:
            return replays
        last = rows[-1]["id"]
        for replay in replays:
            with transaction(replay.factory) as session:
                session.execute(insert(Product), rows)


def _throwaway(dbapi_conn: Any, _record: Any) -> None:
    # A scratch database is deleted afterwards: no need to wait for the disk on each commit.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


class _Replay:
    """One campaigns file's replay in its scratch database."""

    def __init__(
        self,
        factory: SessionFactory,
        config: CampaignConfig,
        shop_zone: ZoneInfo,
        loyalty: LoyaltyConfig | None,
    ) -> None:
        self.factory = factory
        self.config = config
        self.shop_zone = shop_zone
        self.loyalty = loyalty
        self.counting = False
        self.first_counted = 0  # touchpoint ids above this were planned in the window
        self.cancelled_before: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()

    def feed(self, batch: Batch) -> None:
        """Process the batch's events as production did, after what fell due before them."""
        summary = InboxSummary()
        moment = batch.end
        with transaction(self.factory) as session:
            session.execute(
                update(Touchpoint)
                .where(
                    Touchpoint.status == TouchpointStatus.PLANNED, Touchpoint.due_at <= batch.start
                )
                .values(status=TouchpointStatus.SENT, sent_at=Touchpoint.due_at)
            )
            before = session.scalar(select(func.max(Touchpoint.id))) or 0
            process_batch(
                session,
                batch.items,
                self.config,
                shop_zone=self.shop_zone,
                now=moment,
                summary=summary,
                loyalty=self.loyalty,
            )
            _, deliveries = plan_assumed_deliveries(
                session, self.config, now=moment, shop_zone=self.shop_zone
            )
            lapses = plan_lapsed_customers(
                session, self.config, now=moment, shop_zone=self.shop_zone
            )
            self._skip_too_late(session, before, batch)
        if self.counting:
            self.skipped.update(summary.skipped)
            self.skipped.update(deliveries.skipped)
            self.skipped.update(lapses.skipped)

    def _skip_too_late(self, session: Session, before: int, batch: Batch) -> None:
        """Mark the batch's new touchpoints planned more than their campaign's expires_after
        after falling due (planned when production processed their order's first event of
        the batch; the batch's end for the others) as skipped, as dispatch would."""
        expiry = {
            c.id: timedelta(days=c.expires_after.days, seconds=c.expires_after.seconds)
            for c in self.config.campaigns
            if c.expires_after is not None
        }
        new = session.execute(
            select(Touchpoint.id, Touchpoint.campaign_id, Touchpoint.due_at, Order.source)
            .add_columns(Order.external_id)
            .outerjoin(Order, Order.id == Touchpoint.order_id)
            .where(Touchpoint.id > before, Touchpoint.campaign_id.in_(expiry))
        ).all()
        planned_at = batch.planned_at()
        late = [
            row.id
            for row in new
            if planned_at.get((row.source, row.external_id), batch.end) - row.due_at
            > expiry[row.campaign_id]
        ]
        for start in range(0, len(late), PAGE_SIZE):
            session.execute(
                update(Touchpoint)
                .where(Touchpoint.id.in_(late[start : start + PAGE_SIZE]))
                .values(status=TouchpointStatus.SKIPPED, reason=TOO_LATE)
            )

    def start_counting(self) -> None:
        """From now on, what is planned and cancelled counts (the warm-up is over)."""
        with reading(self.factory) as session:
            self.first_counted = session.scalar(select(func.max(Touchpoint.id))) or 0
            self.cancelled_before = self._by_campaign(session, cancelled=True)
        self.counting = True

    def _by_campaign(self, session: object, *, cancelled: bool) -> Counter[str]:
        query = select(Touchpoint.campaign_id, func.count()).group_by(Touchpoint.campaign_id)
        if cancelled:
            query = query.where(Touchpoint.status == TouchpointStatus.CANCELLED)
        else:
            query = query.where(Touchpoint.id > self.first_counted)
        return Counter(dict(session.execute(query).all()))  # type: ignore[attr-defined]

    def counts(self) -> dict[str, CampaignCounts]:
        with reading(self.factory) as session:
            planned = self._by_campaign(session, cancelled=False)
            cancelled = self._by_campaign(session, cancelled=True) - self.cancelled_before
            late = Counter(
                dict(
                    session.execute(
                        select(Touchpoint.campaign_id, func.count())
                        .where(Touchpoint.id > self.first_counted, Touchpoint.reason == TOO_LATE)
                        .group_by(Touchpoint.campaign_id)
                    ).all()
                )
            )
        reasons: dict[str, Counter[str]] = {}
        for key, n in self.skipped.items():
            campaign_id, _, reason = key.partition(": ")
            reasons.setdefault(campaign_id, Counter())[reason] += n
        return {
            c.id: CampaignCounts(
                enabled=c.enabled,
                planned=planned[c.id],
                cancelled=cancelled[c.id],
                too_late=late[c.id],
                not_planned=tuple(reasons.get(c.id, Counter()).most_common()),
            )
            for c in self.config.campaigns
        }
