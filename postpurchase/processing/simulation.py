"""What a campaigns file would have planned on the last days of real inbox history.

``simulate_campaigns`` answers "what if this file had been live?" before a marketer puts it
live: per campaign, how many touchpoints it would plan, how many later events would cancel,
how many would be planned too late to send, and why the others were not planned, next to the
same counts for the current file computed the same way, so the two compare fairly.

How, so that it cannot drift from production and cannot touch it:

- The processed inbox events of the window are read from the store in pages, each in its own
  short read-only transaction: nothing is written there and no lock is held that intake or
  processing would wait for.
- They are fed, in inbox order, to the production batch step (``drain.process_batch``:
  upserts, loyalty, cancelling and planning) and the planning follow-ups (assumed
  deliveries, lapsed customers), in a scratch SQLite database per file, built from the
  migrations in a temporary folder that is deleted afterwards. The store's product catalogue
  is copied in, as conditions read it.
- Each page runs at the moment production processed it (``processed_at``). Earlier events of
  the orders and customers the window names are replayed first (the warm-up), so an order paid
  before the window is not paid again in it; what the warm-up plans is not counted.
- Dispatch is simulated only as time passing: a touchpoint whose due time has passed counts
  as dispatched (a later refund no longer cancels it); one planned already more than its
  campaign's ``expires_after`` past its due time is "too late", as the send-time gate would
  skip it. Consent, suppressions, frequency caps and quiet hours are send-time checks and are
  not simulated.
- Not replayed: rewards issued and points expiring (planned by the rewards and loyalty runs,
  not from the inbox), and win-back for customers with no event in the window.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Text, cast, event, func, insert, select, update
from sqlalchemy.engine import make_url

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.events import CanonicalEvent
from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.processing.batch import InboxSummary, SourcedEvent
from postpurchase.processing.drain import process_batch
from postpurchase.processing.followups import plan_assumed_deliveries, plan_lapsed_customers
from postpurchase.store import schema
from postpurchase.store.database import (
    SessionFactory,
    engine_of,
    make_engine,
    reading,
    session_factory,
    transaction,
)
from postpurchase.store.membership import among, pairs_among
from postpurchase.store.models import (
    ClaimStatus,
    InboxEvent,
    Product,
    Touchpoint,
    TouchpointStatus,
)

PAGE_SIZE = 500
# Events processed this far apart are replayed as separate batches: lateness is measured
# from each batch's moment, so a batch must not stretch over much time.
BATCH_SPAN = timedelta(hours=1)
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
    total, subjects = _window_size(factory, since, now)
    warm_up = _warm_up_ids(factory, since, subjects)
    with tempfile.TemporaryDirectory(prefix="postpurchase-simulation-") as folder:
        replays = _scratch_replays(factory, Path(folder), (candidate, current), shop_zone, loyalty)
        try:
            for items, moment in _batches(_pages_of_ids(factory, warm_up)):
                for replay in replays:
                    replay.feed(items, moment)
            for replay in replays:
                replay.start_counting()
            done = 0
            for items, moment in _batches(_window_pages(factory, since, now)):
                for replay in replays:
                    replay.feed(items, moment)
                done += len(items)
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


def _window(since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    return [
        InboxEvent.status == ClaimStatus.DONE,
        InboxEvent.processed_at >= since,
        InboxEvent.processed_at < until,
    ]


def _window_size(
    factory: SessionFactory, since: datetime, until: datetime
) -> tuple[int, list[tuple[str, str]]]:
    """How many events the window holds, and the (source, subject id) pairs they name."""
    with reading(factory) as session:
        total = session.scalar(select(func.count(InboxEvent.id)).where(*_window(since, until))) or 0
        subjects = session.execute(
            select(InboxEvent.source, InboxEvent.subject_id)
            .where(*_window(since, until), InboxEvent.subject_id.is_not(None))
            .distinct()
        ).all()
    return int(total), [(row.source, row.subject_id) for row in subjects]


def _warm_up_ids(
    factory: SessionFactory, since: datetime, subjects: list[tuple[str, str]]
) -> list[int]:
    """Ids of the events processed before ``since`` about the window's subjects, in order."""
    ids: set[int] = set()
    for start in range(0, len(subjects), PAGE_SIZE):
        chunk = subjects[start : start + PAGE_SIZE]
        with reading(factory) as session:
            ids.update(
                session.scalars(
                    select(InboxEvent.id).where(
                        InboxEvent.status == ClaimStatus.DONE,
                        InboxEvent.processed_at < since,
                        pairs_among(session, InboxEvent.source, InboxEvent.subject_id, chunk),
                    )
                )
            )
    return sorted(ids)


_Page = Sequence[Row[tuple[int, str, str, datetime]]]


def _columns() -> tuple[object, ...]:
    payload = cast(InboxEvent.payload, Text).label("payload")
    return InboxEvent.id, InboxEvent.source, payload, InboxEvent.processed_at


def _window_pages(factory: SessionFactory, since: datetime, until: datetime) -> Iterator[_Page]:
    last = 0
    while True:
        with reading(factory) as session:
            rows = session.execute(
                select(*_columns())  # type: ignore[call-overload]
                .where(*_window(since, until), InboxEvent.id > last)
                .order_by(InboxEvent.id)
                .limit(PAGE_SIZE)
            ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _pages_of_ids(factory: SessionFactory, ids: list[int]) -> Iterator[_Page]:
    for start in range(0, len(ids), PAGE_SIZE):
        with reading(factory) as session:
            yield session.execute(
                select(*_columns())  # type: ignore[call-overload]
                .where(among(session, InboxEvent.id, ids[start : start + PAGE_SIZE]))
                .order_by(InboxEvent.id)
            ).all()


def _batches(pages: Iterator[_Page]) -> Iterator[tuple[list[SourcedEvent], datetime]]:
    """The pages' events in runs processed within ``BATCH_SPAN``, each with its moment (when
    its last event was processed). Payloads that are not canonical events were failed, not
    processed, so none is expected; one is passed over."""
    for page in pages:
        run: list[SourcedEvent] = []
        first: datetime | None = None
        moment: datetime | None = None
        for row in page:
            if first is not None and moment is not None and row.processed_at - first > BATCH_SPAN:
                yield run, moment
                run, first = [], None
            try:
                event = CanonicalEvent.model_validate_json(row.payload)
            except ValueError:
                continue
            run.append(SourcedEvent(row.id, row.source, event))
            first = first or row.processed_at
            moment = row.processed_at
        if run and moment is not None:
            yield run, moment


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

    def feed(self, items: list[SourcedEvent], moment: datetime) -> None:
        """Process ``items`` as production did at ``moment``, after what fell due before."""
        summary = InboxSummary()
        with transaction(self.factory) as session:
            session.execute(
                update(Touchpoint)
                .where(Touchpoint.status == TouchpointStatus.PLANNED, Touchpoint.due_at <= moment)
                .values(status=TouchpointStatus.SENT, sent_at=Touchpoint.due_at)
            )
            before = session.scalar(select(func.max(Touchpoint.id))) or 0
            process_batch(
                session,
                items,
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
            for campaign in self.config.enabled():
                expiry = campaign.expires_after
                if expiry is None:
                    continue
                session.execute(
                    update(Touchpoint)
                    .where(
                        Touchpoint.id > before,
                        Touchpoint.campaign_id == campaign.id,
                        Touchpoint.status == TouchpointStatus.PLANNED,
                        Touchpoint.due_at
                        < moment - timedelta(days=expiry.days, seconds=expiry.seconds),
                    )
                    .values(status=TouchpointStatus.SKIPPED, reason=TOO_LATE)
                )
        if self.counting:
            self.skipped.update(summary.skipped)
            self.skipped.update(deliveries.skipped)
            self.skipped.update(lapses.skipped)

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
