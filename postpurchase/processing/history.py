"""Processed inbox history read back in pages, for replaying it (``simulation``).

The window is the events production processed between two moments (``processed_at``), in
inbox order; the warm-up is the earlier events about the same subjects (orders, customers).
Every page is read in its own short read-only transaction, so a long replay holds no lock and
no snapshot that intake or processing would wait on. Pages are cut into ``Batch``es of events
processed within ``BATCH_SPAN`` of each other, each event keeping its own processing time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Row, Text, cast, func, select

from postpurchase.events import CanonicalEvent
from postpurchase.processing.batch import SourcedEvent
from postpurchase.store.database import SessionFactory, reading
from postpurchase.store.membership import among, keys_among
from postpurchase.store.models import ClaimStatus, InboxEvent
from postpurchase.stored_events import event_of

PAGE_SIZE = 500
# Events processed this far apart are replayed as separate batches. Each batch costs about what
# a processing run costs, so one per production run (every minute) would take hours for a
# month; lateness is still measured from each event's own processing time.
BATCH_SPAN = timedelta(hours=6)


def _window(since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    return [
        InboxEvent.status == ClaimStatus.DONE,
        InboxEvent.processed_at >= since,
        InboxEvent.processed_at < until,
    ]


def window_size(
    factory: SessionFactory, since: datetime, until: datetime
) -> tuple[int, list[tuple[str, str, str]]]:
    """How many events the window holds, and the (source, shop, subject id) keys they name."""
    with reading(factory) as session:
        total = session.scalar(select(func.count(InboxEvent.id)).where(*_window(since, until))) or 0
        subjects = session.execute(
            select(InboxEvent.source, InboxEvent.shop, InboxEvent.subject_id)
            .where(*_window(since, until), InboxEvent.subject_id.is_not(None))
            .distinct()
        ).all()
    return int(total), [(row.source, row.shop or "", row.subject_id) for row in subjects]


def warm_up_ids(
    factory: SessionFactory, since: datetime, subjects: list[tuple[str, str, str]]
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
                        keys_among(
                            session,
                            (
                                InboxEvent.source,
                                func.coalesce(InboxEvent.shop, ""),
                                InboxEvent.subject_id,
                            ),
                            chunk,
                        ),
                    )
                )
            )
    return sorted(ids)


_Page = Sequence[Row[tuple[int, str, str | None, str, datetime]]]


def _columns() -> tuple[object, ...]:
    payload = cast(InboxEvent.payload, Text).label("payload")
    return InboxEvent.id, InboxEvent.source, InboxEvent.shop, payload, InboxEvent.processed_at


def window_pages(factory: SessionFactory, since: datetime, until: datetime) -> Iterator[_Page]:
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


def pages_of_ids(factory: SessionFactory, ids: list[int]) -> Iterator[_Page]:
    for start in range(0, len(ids), PAGE_SIZE):
        with reading(factory) as session:
            yield session.execute(
                select(*_columns())  # type: ignore[call-overload]
                .where(among(session, InboxEvent.id, ids[start : start + PAGE_SIZE]))
                .order_by(InboxEvent.id)
            ).all()


@dataclass(frozen=True)
class Batch:
    """Events replayed together, with when production processed each (by inbox id)."""

    items: list[SourcedEvent]
    processed_at: dict[int, datetime]

    @property
    def start(self) -> datetime:
        return min(self.processed_at.values())

    @property
    def end(self) -> datetime:
        return max(self.processed_at.values())

    def planned_at(self) -> dict[tuple[str, str, str], datetime]:
        """When production first processed an event about each order (by platform key)."""
        moments: dict[tuple[str, str, str], datetime] = {}
        for item in self.items:
            if item.order_key is not None:
                at = self.processed_at[item.inbox_id]
                moments[item.order_key] = min(moments.get(item.order_key, at), at)
        return moments


def batches(pages: Iterator[_Page]) -> Iterator[Batch]:
    """The pages' events in runs processed within ``BATCH_SPAN`` of their first. Payloads that
    are not canonical events were failed, not processed, so none is expected; one is passed
    over."""
    for page in pages:
        batch = Batch([], {})
        for row in page:
            if batch.items and row.processed_at - batch.start > BATCH_SPAN:
                yield batch
                batch = Batch([], {})
            try:
                event = event_of(CanonicalEvent.model_validate_json(row.payload))
            except ValueError:
                continue
            batch.items.append(SourcedEvent(row.id, row.source, event, row.shop or ""))
            batch.processed_at[row.id] = row.processed_at
        if batch.items:
            yield batch
