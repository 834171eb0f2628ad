"""The planning benchmark's ceiling: PostgreSQL doing the drain's writes, and little else.

Each worker process claims 1,000 inbox rows at a time and, in one transaction per batch,
writes what ``process_inbox`` writes for the benchmark's events, in as few and as lean
statements as PostgreSQL allows. As the drain does, the worker reads each payload as JSON text
and hands PostgreSQL the values in it: a plain msgspec decode of the fields the writes use
(nothing checked beyond the JSON's shape) and a dict per customer, order and line keep the
newest snapshot and the earliest journey times, so PostgreSQL gets each row once, as arrays
of columns (``unnest``, sent in binary), and unpacks no JSON. The statements: claim and mark
done in one (``FOR UPDATE SKIP LOCKED ... RETURNING`` the payload), customers (with a new
customer's consent change) and orders each in one ``INSERT ... ON CONFLICT DO UPDATE``
(newest snapshot wins, journey timestamps earliest first; the orders' ids come back from
it), customers' address digests, order lines replaced, the catalogue's placeholder of each
new product, the loyalty award of each paid order, the touchpoints of every step each
campaign the event triggers plans for the benchmark's order (``plans``: its condition,
channels and reminders; holdout and variant by the same hash, in the worker, as the drain
draws them; no send windows or quiet hours, which move a due time but add no row), and the
win-back cancel of customers who ordered. Its rows are the engine's default shop (``shop``
''), keyed like the drain's by (source, shop, platform id); customers are looked up by that
key one row at a time (a lateral subquery, as the drain's ``keys_among``): on tables without
statistics a join may scan every customer for each row of the batch. The worker does little
more than decode and send twelve statements per batch, so what it drains per second is about
the most PostgreSQL itself can take on this machine: the drain's rate over this one,
measured in the same run, says how much is left.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec
import psycopg

from postpurchase.campaigns.conditions import ConditionError
from postpurchase.campaigns.config import Campaign, CampaignConfig
from postpurchase.campaigns.decisions import customer_context, item_context, order_context
from postpurchase.events import OrderSnapshot
from postpurchase.store.models import Channel

BATCH = 1000

_CLAIM = """
UPDATE inbox_events SET status = 'done', claimed_by = %(worker)s, attempts = attempts + 1,
    processed_at = now(), lease_until = NULL
WHERE id IN (
    SELECT id FROM inbox_events WHERE status = 'pending' AND id > %(after)s
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, source, CAST(payload AS text)
"""

# New customers' marketing consent, as the platform gave it, with its history row.
_CUSTOMERS = """
WITH upserted AS (
INSERT INTO customers (source, external_id, email, phone, first_name, last_name, locale,
    time_zone, email_marketing_consent_state, email_marketing_consent_source,
    email_marketing_consent_at, source_updated_at)
SELECT * FROM unnest(CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]),
    CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]),
    CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS timestamptz[]),
    CAST(%b AS timestamptz[]))
ON CONFLICT (source, shop, external_id) DO UPDATE SET email = EXCLUDED.email,
    phone = EXCLUDED.phone, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    locale = EXCLUDED.locale, time_zone = EXCLUDED.time_zone,
    source_updated_at = EXCLUDED.source_updated_at, updated_at = now()
WHERE customers.source_updated_at IS NULL
    OR customers.source_updated_at <= EXCLUDED.source_updated_at
RETURNING id, xmax = 0 AS inserted, email_marketing_consent_state AS state,
    email_marketing_consent_at AS at)
INSERT INTO consent_changes (customer_id, purpose, from_state, to_state, source, reference,
    occurred_at)
SELECT id, 'email_marketing', 'unknown', state, 'platform_payload', 'ceiling', at
FROM upserted WHERE inserted AND state <> 'unknown'
"""

_ADDRESS_KEYS = """
INSERT INTO customer_address_keys (customer_id, address_key)
SELECT c.id, k.address_key
FROM unnest(CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]))
    AS k(source, customer, address_key)
CROSS JOIN LATERAL (SELECT id FROM customers WHERE source = k.source AND shop = ''
    AND external_id = k.customer OFFSET 0) AS c
ON CONFLICT DO NOTHING
"""

_ORDERS = """
INSERT INTO orders (source, external_id, customer_id, name, currency, subtotal, total, total_tax,
    total_discounts, total_shipping, refunded_amount, financial_status, placed_at, paid_at,
    fulfilled_at, delivered_at, delivery_confirmed_at, source_updated_at)
SELECT e.source, e.external_id, c.id, e.name, e.currency, e.subtotal, e.total, e.total_tax,
    e.total_discounts, e.total_shipping, 0, e.financial_status, e.placed_at, e.paid,
    e.fulfilled, e.delivered, e.delivered, e.version
FROM unnest(CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]),
    CAST(%b AS text[]), CAST(%b AS numeric[]), CAST(%b AS numeric[]), CAST(%b AS numeric[]),
    CAST(%b AS numeric[]), CAST(%b AS numeric[]), CAST(%b AS text[]),
    CAST(%b AS timestamptz[]), CAST(%b AS timestamptz[]), CAST(%b AS timestamptz[]),
    CAST(%b AS timestamptz[]), CAST(%b AS timestamptz[]))
    AS e(source, external_id, customer, name, currency, subtotal, total, total_tax,
        total_discounts, total_shipping, financial_status, placed_at, paid, fulfilled,
        delivered, version)
CROSS JOIN LATERAL (SELECT id FROM customers WHERE source = e.source AND shop = ''
    AND external_id = e.customer OFFSET 0) AS c
ON CONFLICT (source, shop, external_id) DO UPDATE SET
    name = CASE WHEN orders.source_updated_at <= EXCLUDED.source_updated_at
        THEN EXCLUDED.name ELSE orders.name END,
    total = CASE WHEN orders.source_updated_at <= EXCLUDED.source_updated_at
        THEN EXCLUDED.total ELSE orders.total END,
    paid_at = LEAST(orders.paid_at, EXCLUDED.paid_at),
    fulfilled_at = LEAST(orders.fulfilled_at, EXCLUDED.fulfilled_at),
    delivered_at = LEAST(orders.delivered_at, EXCLUDED.delivered_at),
    delivery_confirmed_at = LEAST(orders.delivery_confirmed_at, EXCLUDED.delivered_at),
    source_updated_at = GREATEST(orders.source_updated_at, EXCLUDED.source_updated_at),
    updated_at = now()
RETURNING source, external_id, id, customer_id, total, paid_at
"""

_DELETE_ITEMS = "DELETE FROM order_items WHERE order_id = ANY(%b)"

_ITEMS = """
INSERT INTO order_items (order_id, external_id, product_id, variant_id, sku, title, vendor,
    product_type, quantity, unit_price)
SELECT * FROM unnest(CAST(%b AS bigint[]), CAST(%b AS text[]), CAST(%b AS text[]),
    CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]), CAST(%b AS text[]),
    CAST(%b AS text[]), CAST(%b AS int[]), CAST(%b AS numeric[]))
ON CONFLICT DO NOTHING
"""

# The catalogue's placeholder for each product not seen before, looked up later.
_PRODUCTS = """
INSERT INTO products (source, external_id, tags, collections, lookup_attempts)
SELECT source, external_id, CAST('[]' AS jsonb), CAST('[]' AS jsonb), 0
FROM unnest(CAST(%b AS text[]), CAST(%b AS text[])) AS p(source, external_id)
ON CONFLICT DO NOTHING
"""

_AWARDS = """
INSERT INTO loyalty_ledger (customer_id, order_id, kind, points, cause, expires_at)
SELECT customer_id, order_id, 'award', floor(total), 'award:order:' || order_id,
    paid_at + interval '365 days'
FROM unnest(CAST(%b AS bigint[]), CAST(%b AS bigint[]), CAST(%b AS numeric[]),
    CAST(%b AS timestamptz[])) AS o(order_id, customer_id, total, paid_at)
ON CONFLICT (cause) DO NOTHING
"""

_TOUCHPOINTS = """
INSERT INTO touchpoints (subject_key, campaign_id, step, channel, customer_id, order_id, due_at,
    status, reason, attempts, arm, variant)
SELECT 'order:' || order_id, campaign, step, channel, customer_id, order_id,
    at + delay * interval '1 second', CASE WHEN held THEN 'skipped' ELSE 'planned' END,
    CASE WHEN held THEN 'held out (control group)' END, 0,
    CASE WHEN held THEN 'holdout' ELSE 'treatment' END, variant
FROM unnest(CAST(%b AS bigint[]), CAST(%b AS text[]), CAST(%b AS int[]), CAST(%b AS text[]),
    CAST(%b AS bigint[]), CAST(%b AS timestamptz[]), CAST(%b AS float8[]),
    CAST(%b AS boolean[]), CAST(%b AS text[]))
    AS t(order_id, campaign, step, channel, customer_id, at, delay, held, variant)
ON CONFLICT DO NOTHING
"""

_CANCEL = """
UPDATE touchpoints SET status = 'cancelled', reason = 'cancelled by order.placed',
    updated_at = now()
WHERE id = ANY(ARRAY(
    SELECT t.id FROM unnest(CAST(%b AS bigint[])) AS k(customer_id)
    CROSS JOIN LATERAL (SELECT id FROM touchpoints WHERE customer_id = k.customer_id
        AND status = 'planned' AND campaign_id = 'win_back' OFFSET 0 FOR UPDATE) AS t))
"""


# The address each channel needs (``campaigns.decisions``).
_ADDRESS = {Channel.EMAIL: "email", Channel.SMS: "phone"}
# Past any 16 hex digits: the last variant's bound.
_BEYOND = "g"


def plans(config: CampaignConfig, order: OrderSnapshot) -> str:
    """Each step the enabled campaigns plan for the benchmark's ``order``, as JSON (trigger,
    campaign, step, channel, delay in seconds from the event, holdout bound, variants' bounds).

    Every order of the backlog is this one but for its ids and times, so a campaign's
    condition and channels are decided here once, as ``campaigns.decisions`` decides them.
    Send windows and a variant's own delay are left out: they change a due time, not a row.
    """
    items = [item_context(line) for line in order.lines]
    customer = customer_context(order.customer)
    context = {
        # points as the ceiling awards them: whole currency units of the total
        "order": order_context(order, items, points_earned=int(order.total)),
        "customer": customer,
        "items": items,
        "tier": None,
        "review": None,
    }
    steps = []
    for campaign in config.enabled():
        if not _met(campaign, context):
            continue
        channels = [c for c in campaign.channels if customer[_ADDRESS[c]]]
        if campaign.channel_mode == "first":
            channels = channels[:1]
        reminders = campaign.reminders
        delays = [campaign.delay, *((reminders.delay,) * reminders.count if reminders else ())]
        delay = 0.0
        for step, each in enumerate(delays):
            delay += each.days * 86400 + each.seconds
            steps += [
                {
                    "trigger": campaign.trigger,
                    "campaign": campaign.id,
                    "step": step,
                    "channel": channel.value,
                    "delay": delay,
                    "holdout": _bound(campaign.holdout) if campaign.holdout > 0 else None,
                    "variants": _variant_bounds(campaign),
                }
                for channel in channels
            ]
    return json.dumps(steps)


def _met(campaign: Campaign, context: dict[str, Any]) -> bool:
    """Whether the campaign's condition holds; one that fails (a campaign about a tier, say,
    asked about an order) does not, as in ``campaigns.decisions``."""
    try:
        return campaign.when is None or campaign.when.matches(context)
    except ConditionError:
        return False


def _bound(share: Fraction | Decimal) -> str:
    """The 16 hex digits a 64-bit hash is below for a ``share`` of customers (< 1)."""
    return f"{math.ceil(Fraction(share) * 2**64):016x}"


def _variant_bounds(campaign: Campaign) -> list[dict[str, str]] | None:
    """Each variant with the bound of its hashes (``outcomes.assignment.variant_of``)."""
    if not campaign.variants:
        return None
    total = sum(Fraction(v.weight) for v in campaign.variants)
    bounds, upto = [], Fraction(0)
    for variant in campaign.variants[:-1]:
        upto += Fraction(variant.weight)
        bounds.append({"id": variant.id, "below": _bound(upto / total)})
    return [*bounds, {"id": campaign.variants[-1].id, "below": _BEYOND}]


# The payload's fields the writes use (a line's in its table's column order: they are its
# row); msgspec skips the rest without building them. Nothing is checked beyond the JSON's
# shape: the payloads are canonical events, validated by intake when it stored them.
class _Line(msgspec.Struct):
    external_id: str
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    title: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    quantity: int | None = None
    unit_price: str | None = None


class _Customer(msgspec.Struct):
    external_id: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    # left out of the payload (unset) is not the same as given as null
    email_marketing_consent: bool | None | msgspec.UnsetType = msgspec.UNSET
    email_marketing_consent_at: str | None = None
    updated_at: str | None = None


class _Order(msgspec.Struct):
    external_id: str
    name: str | None = None
    currency: str | None = None
    subtotal: str | None = None
    total: str | None = None
    total_tax: str | None = None
    total_discounts: str | None = None
    total_shipping: str | None = None
    financial_status: str | None = None
    placed_at: str | None = None
    updated_at: str | None = None
    lines: list[_Line] = []
    customer: _Customer | None = None
    shipping_address_key: str | None = None


class _Event(msgspec.Struct):
    type: str
    occurred_at: str
    order: _Order | None = None


_DECODE = msgspec.json.Decoder(_Event)
# The events that set an order's journey times (their earliest), by the time they set; an
# order paid already sets ``paid`` from any event.
_JOURNEY = {"order.paid": "paid", "order.fulfilled": "fulfilled", "order.delivered": "delivered"}
_CONSENT: dict[bool | None | msgspec.UnsetType, str] = {True: "granted", False: "denied"}


def _version(stamp: str | None) -> tuple[bool, datetime | None]:
    """A snapshot's version, to keep the newest: one without a time counts as newer than
    any with one (``True`` sorts above ``False``)."""
    return (True, None) if stamp is None else (False, datetime.fromisoformat(stamp))


def _earliest(
    current: tuple[datetime, str] | None, at: tuple[datetime, str]
) -> tuple[datetime, str]:
    return at if current is None or at[0] < current[0] else current


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """``rows`` as one list per column, for ``unnest``."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


class _Batch:
    """What a batch of payloads writes, each row once: the newest snapshot of each customer,
    order and line, the earliest journey times of each order, as the drain merges them."""

    def __init__(self) -> None:
        self.customers: dict[tuple[str, str], tuple[Any, _Customer, str | None]] = {}
        self.orders: dict[tuple[str, str], tuple[Any, _Order]] = {}
        self.journeys: dict[tuple[str, str], dict[str, tuple[datetime, str]]] = defaultdict(dict)
        self.lines: dict[tuple[tuple[str, str], str], tuple[Any, _Line]] = {}
        self.addresses: set[tuple[str, str, str]] = set()
        self.products: set[tuple[str, str]] = set()
        self.events: list[tuple[tuple[str, str], str, str]] = []  # order, type, occurred_at

    def add(self, source: str, payload: str) -> None:
        event = _DECODE.decode(payload)
        order = event.order
        if order is None:
            return
        kind, at = event.type, event.occurred_at
        key = (source, order.external_id)
        version = _version(order.updated_at)
        if key not in self.orders or version > self.orders[key][0]:
            self.orders[key] = (version, order)
        journey = self.journeys[key]
        when = (datetime.fromisoformat(at), at)
        if kind == "order.paid" or order.financial_status == "paid":
            journey["paid"] = _earliest(journey.get("paid"), when)
        if kind in ("order.fulfilled", "order.delivered"):
            journey[_JOURNEY[kind]] = _earliest(journey.get(_JOURNEY[kind]), when)
        for line in order.lines:
            line_key = (key, line.external_id)
            if line_key not in self.lines or version > self.lines[line_key][0]:
                self.lines[line_key] = (version, line)
            if line.product_id is not None:
                self.products.add((source, line.product_id))
        customer = order.customer
        if customer is not None:
            customer_key = (source, customer.external_id)
            stamp = customer.updated_at or order.updated_at
            seen = _version(stamp)
            if customer_key not in self.customers or seen > self.customers[customer_key][0]:
                self.customers[customer_key] = (seen, customer, stamp)
            if order.shipping_address_key is not None:
                self.addresses.add((*customer_key, order.shipping_address_key))
        self.events.append((key, kind, at))

    def customer_rows(self) -> list[list[Any]]:
        rows = []
        for (source, _), (_, c, stamp) in sorted(self.customers.items()):
            consent = c.email_marketing_consent
            given = consent is not msgspec.UNSET
            rows.append(
                (source, c.external_id, c.email, c.phone, c.first_name, c.last_name, c.locale,
                 c.time_zone, _CONSENT.get(consent, "unknown"),
                 "platform_payload" if given else None, c.email_marketing_consent_at, stamp)
            )  # fmt: skip
        return _columns(rows, 12)

    def order_rows(self) -> list[list[Any]]:
        rows = []
        for key, (_, o) in sorted(self.orders.items()):
            if o.customer is None:
                continue  # written with its customer's id: every order of the backlog has one
            journey = self.journeys[key]
            times = [journey[k][1] if k in journey else None for k in _JOURNEY.values()]
            rows.append(
                (*key, o.customer.external_id, o.name, o.currency, o.subtotal, o.total,
                 o.total_tax, o.total_discounts, o.total_shipping, o.financial_status,
                 o.placed_at, *times, o.updated_at)
            )  # fmt: skip
        return _columns(rows, 16)


def _write(
    conn: psycopg.Connection[Any], batch: _Batch, plans: dict[str, list[dict[str, Any]]], salt: str
) -> None:
    """Send ``batch``'s writes: its rows in each table's key order, so that two workers
    lock rows they share in the same order."""
    conn.execute(_CUSTOMERS, batch.customer_rows())
    conn.execute(_ADDRESS_KEYS, _columns(sorted(batch.addresses), 3))
    orders = {
        (source, external_id): (order_id, customer_id, total, paid_at)
        for source, external_id, order_id, customer_id, total, paid_at in conn.execute(
            _ORDERS, batch.order_rows()
        )
    }
    conn.execute(_DELETE_ITEMS, [sorted(o[0] for o in orders.values())])
    conn.execute(_PRODUCTS, _columns(sorted(batch.products), 2))
    items = [
        (orders[key][0], *msgspec.structs.astuple(line))
        for (key, _), (_, line) in batch.lines.items()
        if key in orders
    ]
    conn.execute(_ITEMS, _columns(sorted(items), 10))
    paid = {key for key, kind, _ in batch.events if kind == "order.paid"} & orders.keys()
    awards = sorted(orders[key] for key in paid)
    conn.execute(_AWARDS, _columns(awards, 4))
    touchpoints = []
    for key, kind, at in batch.events:
        if key in orders:
            order_id, customer_id = orders[key][:2]
            touchpoints += [
                (order_id, p["campaign"], p["step"], p["channel"], customer_id, at, p["delay"],
                 *_assignment(p, customer_id, salt))
                for p in plans.get(kind, ())
            ]  # fmt: skip
    conn.execute(_TOUCHPOINTS, _columns(sorted(set(touchpoints)), 9))
    placed = {
        orders[key][1] for key, kind, _ in batch.events if kind == "order.placed" and key in orders
    }
    conn.execute(_CANCEL, [sorted(placed)])


def _assignment(plan: dict[str, Any], customer_id: int, salt: str) -> tuple[bool, str | None]:
    """Whether the customer is held out of the plan's campaign, and their variant, as
    ``outcomes.assignment`` decides: the first 64 bits of a SHA-256 of the customer, compared
    as hex digits with the share's bound."""
    held = plan["holdout"] is not None and _hash(salt, "arm", plan, customer_id) < plan["holdout"]
    variants = plan["variants"]
    if variants is None:
        return held, None
    point = _hash(salt, "variant", plan, customer_id)
    return held, next(v["id"] for v in variants if point < v["below"])


def _hash(salt: str, kind: str, plan: dict[str, Any], customer_id: int) -> str:
    parts = "\x1f".join((salt, kind, plan["campaign"], str(customer_id)))
    return hashlib.sha256(parts.encode()).hexdigest()[:16]


def drain(url: str, plan_json: str, salt: str, start: Any, results: Any) -> None:
    """Child process, one ceiling worker: drain the inbox; report like a drainer."""
    plans: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for plan in json.loads(plan_json):
        plans[plan["trigger"]].append(plan)
    with psycopg.connect(url) as conn:
        start.wait()
        began, cpu = time.time(), time.process_time()
        after, events, progress = 0, 0, []
        while True:
            with conn.transaction():
                conn.execute("SELECT set_config('enable_sort', 'off', true)")
                claimed = conn.execute(
                    _CLAIM, {"worker": f"ceiling:{os.getpid()}", "after": after, "limit": BATCH}
                ).fetchall()
                conn.execute("SELECT set_config('enable_sort', 'on', true)")
                if not claimed:
                    break
                batch = _Batch()
                for _, source, payload in claimed:
                    batch.add(source, payload)
                _write(conn, batch, plans, salt)
            after = max(row[0] for row in claimed)
            events += len(claimed)
            progress.append((time.time(), len(claimed), 0.0, time.process_time()))
    results.put(
        {
            "began": began,
            "ended": time.time(),
            "events": events,
            "cpu": time.process_time() - cpu,
            "cpu_began": cpu,
            "progress": progress,
        }
    )
