"""The planning benchmark's ceiling: PostgreSQL alone doing the drain's writes.

Each worker process claims 1,000 inbox rows at a time and, in one transaction per batch,
writes what ``process_inbox`` writes for the benchmark's events, in as few statements as
PostgreSQL allows, all computed in SQL from the payloads: claim and mark done in one
statement (``FOR UPDATE SKIP LOCKED ... RETURNING`` the payload into a temporary table),
customers and orders each in one ``INSERT ... ON CONFLICT DO UPDATE`` (newest snapshot wins,
journey timestamps earliest first), order lines replaced, the loyalty award of each paid order,
a touchpoint per event and campaign it triggers (first channel, first step, the campaign's
delay; no conditions, consent or quiet hours), and the win-back cancel of customers who
ordered. Its rows are the engine's default shop (``shop`` ''), keyed like the drain's by
(source, shop, platform id), and looked up by that key one row at a time (a lateral
subquery, as the drain's ``keys_among``): on tables without statistics a join may scan every
customer or order for each event of the batch. The client does nothing but send ten
statements per batch, so what it drains per second is about the most PostgreSQL itself can
take on this machine: the drain's rate over this one, measured in the same run, says how much
is left.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import psycopg

from postpurchase.campaigns.config import CampaignConfig

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

_CUSTOMERS = """
INSERT INTO customers (source, external_id, email, first_name, time_zone, source_updated_at)
SELECT DISTINCT ON (source, c->>'external_id') source, c->>'external_id', c->>'email',
    c->>'first_name', c->>'time_zone', version
FROM (SELECT source, payload->'order'->'customer' AS c,
        CAST(payload->'order'->>'updated_at' AS timestamptz) AS version FROM batch) AS s
WHERE c IS NOT NULL
ORDER BY source, c->>'external_id', version DESC
ON CONFLICT (source, shop, external_id) DO UPDATE SET email = EXCLUDED.email,
    first_name = EXCLUDED.first_name, time_zone = EXCLUDED.time_zone,
    source_updated_at = EXCLUDED.source_updated_at, updated_at = now()
WHERE customers.source_updated_at IS NULL
    OR customers.source_updated_at <= EXCLUDED.source_updated_at
"""

_ORDERS = """
INSERT INTO orders (source, external_id, customer_id, name, currency, subtotal, total, total_tax,
    total_discounts, total_shipping, refunded_amount, placed_at, paid_at, fulfilled_at,
    delivered_at, delivery_confirmed_at, source_updated_at)
SELECT DISTINCT ON (e.source, e.o->>'external_id') e.source, e.o->>'external_id', c.id,
    e.o->>'name', e.o->>'currency', CAST(e.o->>'subtotal' AS numeric),
    CAST(e.o->>'total' AS numeric), 0, 0, 0, 0, CAST(e.o->>'placed_at' AS timestamptz),
    t.paid, t.fulfilled, t.delivered, t.delivered, e.version
FROM (SELECT source, payload->'order' AS o, payload->>'type' AS type,
        CAST(payload->>'occurred_at' AS timestamptz) AS at,
        CAST(payload->'order'->>'updated_at' AS timestamptz) AS version FROM batch) AS e
CROSS JOIN LATERAL (SELECT id FROM customers WHERE source = e.source AND shop = ''
    AND external_id = e.o->'customer'->>'external_id' OFFSET 0) AS c
JOIN (SELECT source, payload->'order'->>'external_id' AS external_id,
        min(CAST(payload->>'occurred_at' AS timestamptz))
            FILTER (WHERE payload->>'type' = 'order.paid') AS paid,
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
INSERT INTO order_items (order_id, external_id, title, product_type, quantity, unit_price)
SELECT DISTINCT ON (o.id, line->>'external_id') o.id, line->>'external_id', line->>'title',
    line->>'product_type', CAST(line->>'quantity' AS int), CAST(line->>'unit_price' AS numeric)
FROM batch AS b
CROSS JOIN LATERAL (SELECT id, customer_id, total, paid_at FROM orders WHERE source = b.source
    AND shop = '' AND external_id = b.payload->'order'->>'external_id' OFFSET 0) AS o
CROSS JOIN jsonb_array_elements(b.payload->'order'->'lines') AS line
ORDER BY o.id, line->>'external_id', CAST(b.payload->'order'->>'updated_at' AS timestamptz) DESC
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

_TOUCHPOINTS = """
INSERT INTO touchpoints (subject_key, campaign_id, step, channel, customer_id, order_id, due_at,
    status, attempts)
SELECT 'order:' || o.id, p.campaign, 0, p.channel, o.customer_id, o.id,
    CAST(b.payload->>'occurred_at' AS timestamptz) + p.delay * interval '1 second', 'planned', 0
FROM batch AS b
CROSS JOIN LATERAL (SELECT id, customer_id, total, paid_at FROM orders WHERE source = b.source
    AND shop = '' AND external_id = b.payload->'order'->>'external_id' OFFSET 0) AS o
JOIN json_to_recordset(CAST(%(plans)s AS json)) AS p(trigger text, campaign text, channel text,
    delay float8) ON p.trigger = b.payload->>'type'
ORDER BY 1, 2
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


def plans(config: CampaignConfig) -> str:
    """The enabled campaigns as (trigger, campaign, first channel, delay in seconds), JSON."""
    return json.dumps(
        [
            {
                "trigger": c.trigger,
                "campaign": c.id,
                "channel": c.channels[0].value,
                "delay": c.delay.days * 86400 + c.delay.seconds,
            }
            for c in config.enabled()
        ]
    )


def drain(url: str, plan_json: str, start: Any, results: Any) -> None:
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
                orders = [row[0] for row in conn.execute(_ORDERS)]
                conn.execute(_DELETE_ITEMS, {"orders": orders})
                conn.execute(_ITEMS)
                conn.execute(_AWARDS)
                conn.execute(_TOUCHPOINTS, {"plans": plan_json})
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
