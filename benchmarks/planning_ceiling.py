"""The planning benchmark's ceiling: PostgreSQL alone doing the drain's writes.

Each worker process claims 1,000 inbox rows at a time and, in one transaction per batch,
writes what ``process_inbox`` writes for the benchmark's events, in as few statements as
PostgreSQL allows, all computed in SQL from the payloads: claim and mark done in one
statement (``FOR UPDATE SKIP LOCKED ... RETURNING`` the payload into a temporary table),
customers (with a new customer's consent change) and orders each in one ``INSERT ... ON
CONFLICT DO UPDATE`` (newest snapshot wins, journey timestamps earliest first), customers'
address digests, order lines replaced, the catalogue's placeholder of each new product, the
loyalty award of each paid order, the touchpoints of every step each campaign the event
triggers plans for the benchmark's order (``plans``: its condition, channels and reminders,
holdout and variant by the same hash; no send windows or quiet hours, which move a due time
but add no row), and the win-back cancel of customers who ordered. Its rows are the engine's
default shop (``shop`` ''), keyed like the drain's by (source, shop, platform id), and looked
up by that key one row at a time (a lateral subquery, as the drain's ``keys_among``): on
tables without statistics a join may scan every customer or order for each event of the
batch. The client does nothing but send twelve statements per batch, so what it drains per
second is about the most PostgreSQL itself can take on this machine: the drain's rate over
this one, measured in the same run, says how much is left.
"""

from __future__ import annotations

import json
import math
import os
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any

import psycopg

from postpurchase.campaigns.conditions import ConditionError
from postpurchase.campaigns.config import Campaign, CampaignConfig
from postpurchase.campaigns.decisions import customer_context, item_context, order_context
from postpurchase.events import OrderSnapshot
from postpurchase.store.models import Channel

BATCH = 1000

_SETUP = """
CREATE TEMP TABLE batch (id bigint, source text, payload jsonb) ON COMMIT DELETE ROWS
"""

_CLAIM = """
WITH claimed AS (
    UPDATE inbox_events SET status = 'done', claimed_by = %(worker)s, attempts = attempts + 1,
        processed_at = now(), lease_until = NULL
    WHERE id IN (
        SELECT id FROM inbox_events WHERE status = 'pending' AND id > %(after)s
        ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    RETURNING id, source, payload)
INSERT INTO batch SELECT id, source, payload FROM claimed RETURNING id
"""

# New customers' marketing consent, as the platform gave it, with its history row.
_CUSTOMERS = """
WITH upserted AS (
INSERT INTO customers (source, external_id, email, phone, first_name, last_name, locale,
    time_zone, email_marketing_consent_state, email_marketing_consent_source,
    email_marketing_consent_at, source_updated_at)
SELECT DISTINCT ON (source, c->>'external_id') source, c->>'external_id', c->>'email',
    c->>'phone', c->>'first_name', c->>'last_name', c->>'locale', c->>'time_zone',
    CASE CAST(c->>'email_marketing_consent' AS boolean) WHEN true THEN 'granted'
        WHEN false THEN 'denied' ELSE 'unknown' END,
    CASE WHEN c ? 'email_marketing_consent' THEN 'platform_payload' END,
    CAST(c->>'email_marketing_consent_at' AS timestamptz), version
FROM (SELECT source, payload->'order'->'customer' AS c,
        CAST(coalesce(payload->'order'->'customer'->>'updated_at', payload->'order'->>'updated_at')
            AS timestamptz) AS version FROM batch) AS s
WHERE c IS NOT NULL
ORDER BY source, c->>'external_id', version DESC
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
SELECT DISTINCT c.id, b.payload->'order'->>'shipping_address_key' FROM batch AS b
CROSS JOIN LATERAL (SELECT id FROM customers WHERE source = b.source AND shop = ''
    AND external_id = b.payload->'order'->'customer'->>'external_id' OFFSET 0) AS c
WHERE b.payload->'order' ? 'shipping_address_key'
ORDER BY 1, 2
ON CONFLICT DO NOTHING
"""

_ORDERS = """
INSERT INTO orders (source, external_id, customer_id, name, currency, subtotal, total, total_tax,
    total_discounts, total_shipping, refunded_amount, financial_status, placed_at, paid_at,
    fulfilled_at, delivered_at, delivery_confirmed_at, source_updated_at)
SELECT DISTINCT ON (e.source, e.o->>'external_id') e.source, e.o->>'external_id', c.id,
    e.o->>'name', e.o->>'currency', CAST(e.o->>'subtotal' AS numeric),
    CAST(e.o->>'total' AS numeric), CAST(e.o->>'total_tax' AS numeric),
    CAST(e.o->>'total_discounts' AS numeric), CAST(e.o->>'total_shipping' AS numeric), 0,
    e.o->>'financial_status', CAST(e.o->>'placed_at' AS timestamptz), t.paid, t.fulfilled,
    t.delivered, t.delivered, e.version
FROM (SELECT source, payload->'order' AS o, payload->>'type' AS type,
        CAST(payload->>'occurred_at' AS timestamptz) AS at,
        CAST(payload->'order'->>'updated_at' AS timestamptz) AS version FROM batch) AS e
CROSS JOIN LATERAL (SELECT id FROM customers WHERE source = e.source AND shop = ''
    AND external_id = e.o->'customer'->>'external_id' OFFSET 0) AS c
JOIN (SELECT source, payload->'order'->>'external_id' AS external_id,
        min(CAST(payload->>'occurred_at' AS timestamptz))
            FILTER (WHERE payload->>'type' = 'order.paid'
                OR payload->'order'->>'financial_status' = 'paid') AS paid,
        min(CAST(payload->>'occurred_at' AS timestamptz))
            FILTER (WHERE payload->>'type' = 'order.fulfilled') AS fulfilled,
        min(CAST(payload->>'occurred_at' AS timestamptz))
            FILTER (WHERE payload->>'type' = 'order.delivered') AS delivered
      FROM batch GROUP BY 1, 2) AS t
    ON t.source = e.source AND t.external_id = e.o->>'external_id'
ORDER BY e.source, e.o->>'external_id', e.version DESC
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
RETURNING id
"""

_DELETE_ITEMS = "DELETE FROM order_items WHERE order_id = ANY(%(orders)s)"

_ITEMS = """
INSERT INTO order_items (order_id, external_id, product_id, variant_id, sku, title, vendor,
    product_type, quantity, unit_price)
SELECT DISTINCT ON (o.id, line->>'external_id') o.id, line->>'external_id',
    line->>'product_id', line->>'variant_id', line->>'sku', line->>'title', line->>'vendor',
    line->>'product_type', CAST(line->>'quantity' AS int), CAST(line->>'unit_price' AS numeric)
FROM batch AS b
CROSS JOIN LATERAL (SELECT id, customer_id, total, paid_at FROM orders WHERE source = b.source
    AND shop = '' AND external_id = b.payload->'order'->>'external_id' OFFSET 0) AS o
CROSS JOIN jsonb_array_elements(b.payload->'order'->'lines') AS line
ORDER BY o.id, line->>'external_id', CAST(b.payload->'order'->>'updated_at' AS timestamptz) DESC
ON CONFLICT DO NOTHING
"""

# The catalogue's placeholder for each product not seen before, looked up later.
_PRODUCTS = """
INSERT INTO products (source, external_id, tags, collections, lookup_attempts)
SELECT DISTINCT b.source, line->>'product_id', CAST('[]' AS jsonb), CAST('[]' AS jsonb), 0
FROM batch AS b
CROSS JOIN jsonb_array_elements(b.payload->'order'->'lines') AS line
WHERE line ? 'product_id'
ORDER BY 1, 2
ON CONFLICT DO NOTHING
"""

_AWARDS = """
INSERT INTO loyalty_ledger (customer_id, order_id, kind, points, cause, expires_at)
SELECT o.customer_id, o.id, 'award', floor(o.total), 'award:order:' || o.id,
    o.paid_at + interval '365 days'
FROM batch AS b
CROSS JOIN LATERAL (SELECT id, customer_id, total, paid_at FROM orders WHERE source = b.source
    AND shop = '' AND external_id = b.payload->'order'->>'external_id' OFFSET 0) AS o
WHERE b.payload->>'type' = 'order.paid'
ORDER BY o.id
ON CONFLICT (cause) DO NOTHING
"""

# Each step a campaign plans for the event (``plans``), held out or not and in which variant
# as ``outcomes.assignment`` decides: by the first 64 bits of a SHA-256 of the customer,
# compared as hex digits with the share's bound.
_TOUCHPOINTS = """
INSERT INTO touchpoints (subject_key, campaign_id, step, channel, customer_id, order_id, due_at,
    status, reason, attempts, arm, variant)
SELECT 'order:' || o.id, p.campaign, p.step, p.channel, o.customer_id, o.id,
    CAST(b.payload->>'occurred_at' AS timestamptz) + p.delay * interval '1 second',
    CASE WHEN a.held THEN 'skipped' ELSE 'planned' END,
    CASE WHEN a.held THEN 'held out (control group)' END, 0,
    CASE WHEN a.held THEN 'holdout' ELSE 'treatment' END,
    (SELECT v.id FROM jsonb_to_recordset(p.variants) AS v(id text, below text)
        WHERE a.variant < v.below ORDER BY v.below LIMIT 1)
FROM batch AS b
CROSS JOIN LATERAL (SELECT id, customer_id FROM orders WHERE source = b.source
    AND shop = '' AND external_id = b.payload->'order'->>'external_id' OFFSET 0) AS o
JOIN jsonb_to_recordset(CAST(%(plans)s AS jsonb)) AS p(trigger text, campaign text, step int,
    channel text, delay float8, holdout text, variants jsonb) ON p.trigger = b.payload->>'type'
CROSS JOIN LATERAL (SELECT
    p.holdout IS NOT NULL AND left(encode(sha256(convert_to(concat_ws(chr(31),
        CAST(%(salt)s AS text), 'arm', p.campaign, o.customer_id), 'UTF8')), 'hex'), 16)
        COLLATE "C" < p.holdout AS held,
    CASE WHEN p.variants IS NOT NULL THEN left(encode(sha256(convert_to(concat_ws(chr(31),
        CAST(%(salt)s AS text), 'variant', p.campaign, o.customer_id), 'UTF8')), 'hex'), 16) END
        COLLATE "C" AS variant) AS a
ORDER BY 1, 2, 3, 4
ON CONFLICT DO NOTHING
"""

_CANCEL = """
UPDATE touchpoints SET status = 'cancelled', reason = 'cancelled by order.placed',
    updated_at = now()
WHERE id = ANY(ARRAY(
    SELECT t.id FROM (SELECT DISTINCT o.customer_id FROM batch AS b
            CROSS JOIN LATERAL (SELECT customer_id FROM orders WHERE source = b.source AND shop = ''
                AND external_id = b.payload->'order'->>'external_id' OFFSET 0) AS o
        WHERE b.payload->>'type' = 'order.placed') AS k
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


def drain(url: str, plan_json: str, salt: str, start: Any, results: Any) -> None:
    """Child process, one ceiling worker: drain the inbox in SQL; report like a drainer."""
    with psycopg.connect(url) as conn:
        conn.execute(_SETUP)
        conn.commit()
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
                conn.execute(_CUSTOMERS)
                conn.execute(_ADDRESS_KEYS)
                orders = [row[0] for row in conn.execute(_ORDERS)]
                conn.execute(_DELETE_ITEMS, {"orders": orders})
                conn.execute(_PRODUCTS)
                conn.execute(_ITEMS)
                conn.execute(_AWARDS)
                conn.execute(_TOUCHPOINTS, {"plans": plan_json, "salt": salt})
                conn.execute(_CANCEL)
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
