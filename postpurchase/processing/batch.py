"""What one processing batch holds: its events with their inbox rows, and the customer and
order rows as the upsert left them (plain values, not ORM objects), which planning and
loyalty read instead of querying again; and ``InboxSummary``, what a drain did."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from postpurchase.events import EventType
from postpurchase.store.models import ConsentState
from postpurchase.stored_events import StoredEvent, StoredOrder, StoredRefund

Key = tuple[str, str, str]  # (source, shop, platform id)


@dataclass(init=False, slots=True)
class SourcedEvent:
    """A canonical event with the inbox row it came from; ``shop`` is the row's shop ("" when
    it names none: the engine's default shop). ``order_key`` and ``customer_key`` are the
    platform keys of its order and customer, if it names them; ``kind``, ``occurred_at`` and
    ``order`` are the event's type, time and order snapshot.

    Not frozen, though nothing changes one once made: a drain makes one per event, and a
    frozen dataclass took three times as long to make (each field set through
    ``object.__setattr__``). Its keys are computed once, with the event: a batch asks for
    each event's keys many times. So are its type, time and order, which every step of a batch
    reads again for each event.
    """

    inbox_id: int
    source: str
    event: StoredEvent
    shop: str
    order_key: Key | None = field(repr=False, compare=False)
    customer_key: Key | None = field(repr=False, compare=False)
    kind: EventType = field(repr=False, compare=False)
    occurred_at: datetime = field(repr=False, compare=False)
    order: StoredOrder | None = field(repr=False, compare=False)

    def __init__(self, inbox_id: int, source: str, event: StoredEvent, shop: str = "") -> None:
        self.inbox_id = inbox_id
        self.source = source
        self.event = event
        self.shop = shop
        self.kind = event.type
        self.occurred_at = event.occurred_at
        self.order = order = event.order
        customer = event.customer or (order.customer if order else None)
        self.order_key = (source, shop, order.external_id) if order else None
        self.customer_key = (source, shop, customer.external_id) if customer else None


@dataclass(slots=True)
class CustomerRecord:
    """A customer row as the batch left it (plain values, not an ORM object)."""

    id: int
    source: str
    shop: str
    external_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    locale: str | None
    time_zone: str | None
    email_marketing_consent_state: ConsentState
    email_marketing_consent_source: str | None
    email_marketing_consent_at: datetime | None
    sms_marketing_consent_state: ConsentState
    sms_marketing_consent_source: str | None
    sms_marketing_consent_at: datetime | None
    sms_consent_state: ConsentState
    sms_consent_source: str | None
    sms_consent_at: datetime | None
    source_updated_at: datetime | None


@dataclass(slots=True)
class OrderRecord:
    """An order row as the batch left it (plain values, not an ORM object)."""

    id: int
    source: str
    shop: str
    external_id: str
    customer_id: int | None
    name: str | None
    currency: str
    subtotal: Decimal
    total: Decimal
    total_tax: Decimal
    total_discounts: Decimal
    total_shipping: Decimal
    refunded_amount: Decimal
    financial_status: str | None
    fulfillment_status: str | None
    tracking_url: str | None
    placed_at: datetime | None
    paid_at: datetime | None
    fulfilled_at: datetime | None
    delivered_at: datetime | None
    delivery_confirmed_at: datetime | None
    cancelled_at: datetime | None
    returned_at: datetime | None
    reviewed_at: datetime | None
    source_updated_at: datetime | None


@dataclass
class Records:
    """The rows a batch touched, after the upsert.

    ``customers`` and ``orders`` are by platform key; ``customers_by_id`` also holds the
    customers of the batch's orders that its events did not name. ``items`` holds the lines
    of the orders whose items the batch replaced, as stored, by order id.

    ``refunds`` holds, by order id, the recorded refunds of the batch's orders that have any,
    oldest first, each with what the order's refunds add up to through it; ``new_refunds``
    the refunds each event (by inbox id) was the first to record.
    """

    customers: dict[Key, CustomerRecord] = field(default_factory=dict)
    orders: dict[Key, OrderRecord] = field(default_factory=dict)
    customers_by_id: dict[int, CustomerRecord] = field(default_factory=dict)
    items: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    refunds: dict[int, list[tuple[StoredRefund, Decimal]]] = field(default_factory=dict)
    new_refunds: dict[int, list[StoredRefund]] = field(default_factory=dict)
    # Inbox ids of the events, of any type, that first made their order paid.
    newly_paid: set[int] = field(default_factory=set)

    def order_for(self, item: SourcedEvent) -> OrderRecord | None:
        return self.orders.get(item.order_key) if item.order_key else None

    def customer_for(self, item: SourcedEvent) -> CustomerRecord | None:
        return self.rows_for(item)[1]

    def rows_for(self, item: SourcedEvent) -> tuple[OrderRecord | None, CustomerRecord | None]:
        """``item``'s order and customer, its order looked up once for both."""
        order = self.orders.get(item.order_key) if item.order_key else None
        key = item.customer_key
        if key is not None:
            return order, self.customers.get(key)
        if order is None or order.customer_id is None:
            return order, None
        return order, self.customers_by_id.get(order.customer_id)

    def refunds_of(self, order: OrderRecord | None) -> list[tuple[StoredRefund, Decimal]]:
        """The recorded refunds of ``order`` (see ``refunds``)."""
        return self.refunds.get(order.id, []) if order is not None else []


@dataclass
class InboxSummary:
    """What a drain did: events processed by type, touchpoints planned and cancelled."""

    events: Counter[str] = field(default_factory=Counter)
    planned: int = 0
    cancelled: int = 0
    points: int = 0  # loyalty points awarded minus reversed
    refunds: int = 0  # refunds recorded for the first time
    failed: int = 0
    retried: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        total = sum(self.events.values())
        lines = [
            f"processed {total} event(s); planned {self.planned} touchpoint(s), "
            f"cancelled {self.cancelled}; loyalty points {self.points:+d}; "
            f"{self.failed} event(s) failed, "
            f"{self.retried} to retry"
        ]
        lines += [f"  {kind}: {n}" for kind, n in sorted(self.events.items())]
        if self.refunds:
            lines.append(f"  refunds recorded: {self.refunds}")
        lines += [f"  not planned, {reason}: {n}" for reason, n in self.skipped.most_common(10)]
        lines += [f"  error: {error}" for error in self.errors[:10]]
        return lines

    def add(self, part: InboxSummary) -> None:
        """Count ``part`` (another batch's or another drainer's summary) in this one."""
        self.events.update(part.events)
        self.planned += part.planned
        self.cancelled += part.cancelled
        self.points += part.points
        self.refunds += part.refunds
        self.failed += part.failed
        self.retried += part.retried
        self.skipped.update(part.skipped)
        self.errors += part.errors

    def counts(self) -> dict[str, Any]:
        """The summary as JSON values: a drain task's return value, read by the next task."""
        return {
            "events": dict(self.events),
            "planned": self.planned,
            "cancelled": self.cancelled,
            "points": self.points,
            "refunds": self.refunds,
            "failed": self.failed,
            "retried": self.retried,
            "skipped": dict(self.skipped),
            "errors": self.errors[:10],
        }

    @classmethod
    def combined(cls, parts: Iterable[Mapping[str, Any]]) -> InboxSummary:
        """One summary from several drainers' ``counts()``."""
        total = cls()
        for part in parts:
            counters = {name: Counter(part[name]) for name in ("events", "skipped")}
            total.add(cls(**{**part, **counters, "errors": list(part["errors"])}))
        return total
