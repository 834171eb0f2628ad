"""Set-based refresh of the outcome tables, for the messages of any window.

``refresh_outcomes(session, config, since=..., now=...)`` recomputes, from ``since`` (rounded
down to a UTC midnight) on, in four statements whatever the volume:

1. ``touchpoint_outcomes``: one row per touchpoint, from its status and message events, with
   the first click by a person (scanner clicks counted apart, see ``clicks``);
2. ``attributed_orders``: each paid, uncancelled order credited to the message the customer
   last clicked before paying, if the click was within that message's attribution window
   (default 5 days after an email click, 1 day after an SMS click); revenue is the order's
   total less what has been refunded so far, so a later refund takes it back at the next
   refresh. Opens never attribute (Apple Mail Privacy Protection opens everything);
3. the holdout comparison: for each first message (step 0, sent, skipped or held out, past
   its due time), whether the customer paid an order within the window after its due time,
   clicked or not (intention to treat: both arms start from when the message was due);
4. ``campaign_days``: the funnel per day the messages were due, campaign, shop, variant and
   arm.

Messages are taken by their due time (a send comes at or after it), so a period holds the
same messages in both arms however late some were sent.

Each step deletes what it is about to rebuild: running it twice gives the same rows, and a
wider ``since`` recomputes more history. Nothing is read or written per touchpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.outcomes.clicks import BURST_SECONDS, SCANNER_SECONDS
from postpurchase.outcomes.sql import Dialect
from postpurchase.store.columns import UtcDateTime
from postpurchase.store.models import Order

_DELIVERED = "('delivered')"
_BOUNCED = "('bounce', 'dropped', 'undelivered', 'failed')"
_COMPLAINED = "('spamreport')"
_UNSUBSCRIBED = "('unsubscribe', 'group_unsubscribe')"


@dataclass(frozen=True)
class RefreshCounts:
    touchpoints: int
    attributed: int
    days: int
    currency: str | None


def window_ms(config: CampaignConfig, alias: str) -> str:
    """A CASE giving each touchpoint row's attribution window in milliseconds.

    Campaign ids are validated as ``[a-z][a-z0-9_]*`` so they are safe as SQL literals.
    """
    default = config.outcomes.attribution
    whens = []
    for campaign in config.campaigns:
        windows = campaign.attribution or default
        for channel in ("email", "sms"):
            whens.append(
                f"WHEN {alias}.campaign_id = '{campaign.id}' AND {alias}.channel = '{channel}' "
                f"THEN {windows.seconds(channel) * 1000}"
            )
    fallback = (
        f"WHEN {alias}.channel = 'sms' THEN {default.seconds('sms') * 1000} "
        f"ELSE {default.seconds('email') * 1000}"
    )
    return f"(CASE {' '.join(whens)} {fallback} END)"


def shop_currency(session: Session) -> str | None:
    """The currency most paid orders are in: the one revenue is reported in."""
    return session.execute(
        select(Order.currency)
        .where(Order.paid_at.is_not(None))
        .group_by(Order.currency)
        .order_by(func.count().desc(), Order.currency)
        .limit(1)
    ).scalar_one_or_none()


def _run(session: Session, sql: str, **params: object) -> int:
    statement = text(sql)
    for name in ("since", "now"):
        if name in params:
            statement = statement.bindparams(bindparam(name, type_=UtcDateTime()))
    result = session.execute(statement, params)
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count < 0 and session.get_bind().dialect.name == "sqlite":
        # Python's sqlite3 reports no count for a statement starting with WITH
        count = int(session.execute(text("SELECT changes()")).scalar_one())
    return count


def refresh_outcomes(
    session: Session, config: CampaignConfig, *, since: datetime, now: datetime
) -> RefreshCounts:
    """Rebuild the outcome tables for messages and orders from ``since``'s day on."""
    since = datetime.combine(since.astimezone(UTC).date(), time(0), tzinfo=UTC)
    d = Dialect(session.get_bind().dialect.name)
    currency = shop_currency(session)
    if d.postgres:
        # Sorts and hashes over millions of events stay in memory instead of spilling to disk;
        # the planner's row estimates through the CTEs are far off, and just-in-time
        # compilation it then chooses cost more (about 0.9 s) than it saved.
        session.execute(text("SET LOCAL work_mem = '256MB'"))
        session.execute(text("SET LOCAL jit = off"))
    _run(session, "DELETE FROM touchpoint_outcomes WHERE due_at >= :since", since=since)
    touchpoints = _run(session, _touchpoint_sql(d), since=since)
    if d.postgres:  # fresh statistics, or the next joins probe orders once per message
        session.execute(text("ANALYZE touchpoint_outcomes"))
    _run(session, "DELETE FROM attributed_orders WHERE paid_at >= :since", since=since)
    attributed = _run(session, _attribution_sql(d, config), since=since)
    _run(session, f"DELETE FROM campaign_days WHERE day >= '{since.date().isoformat()}'")
    days = _run(session, _days_sql(d, config), since=since, now=now, currency=currency or "")
    return RefreshCounts(touchpoints, attributed, days, currency)


def _touchpoint_sql(d: Dialect) -> str:
    url, method = d.text_of("e.detail", "url"), d.text_of("e.detail", "method")
    at, prev_at, next_at = d.ms("c.at"), d.ms("c.prev_at"), d.ms("c.next_at")
    scanner = (
        f"c.method = 'HEAD'"
        f" OR (c.sent_at IS NOT NULL AND {at} - {d.ms('c.sent_at')} < {SCANNER_SECONDS * 1000})"
        f" OR (c.delivered_at IS NOT NULL AND {at} >= {d.ms('c.delivered_at')}"
        f"     AND {at} - {d.ms('c.delivered_at')} < {SCANNER_SECONDS * 1000})"
        f" OR (c.prev_url <> c.url AND {at} - {prev_at} <= {BURST_SECONDS * 1000})"
        f" OR (c.next_url <> c.url AND {next_at} - {at} <= {BURST_SECONDS * 1000})"
    )

    def flag(kinds: str) -> str:
        return f"MAX(CASE WHEN e.event IN {kinds} THEN 1 ELSE 0 END)"

    return f"""
WITH scope AS (
    SELECT t.id, t.campaign_id, t.shop, COALESCE(t.variant, '') AS variant,
           COALESCE(t.arm, 'treatment') AS arm, t.channel, t.step, t.customer_id,
           COALESCE(t.sent_at, t.due_at) AS moment, t.due_at, t.sent_at, t.status
    FROM touchpoints t
    WHERE t.due_at >= :since
),
ev AS (
    SELECT e.touchpoint_id,
           {flag(_DELIVERED)} AS delivered,
           MIN(CASE WHEN e.event IN {_DELIVERED} THEN e.occurred_at END) AS delivered_at,
           {flag("('open')")} AS opened,
           {flag(_BOUNCED)} AS bounced,
           {flag(_COMPLAINED)} AS complained,
           {flag(_UNSUBSCRIBED)} AS unsubscribed
    FROM message_events e JOIN scope s ON s.id = e.touchpoint_id
    WHERE e.event <> 'click'
    GROUP BY e.touchpoint_id
),
c AS (
    SELECT e.touchpoint_id, e.occurred_at AS at, {url} AS url, {method} AS method,
           s.sent_at, ev.delivered_at,
           LAG(e.occurred_at) OVER w AS prev_at, LAG({url}) OVER w AS prev_url,
           LEAD(e.occurred_at) OVER w AS next_at, LEAD({url}) OVER w AS next_url
    FROM message_events e
    JOIN scope s ON s.id = e.touchpoint_id
    LEFT JOIN ev ON ev.touchpoint_id = e.touchpoint_id
    WHERE e.event = 'click'
    WINDOW w AS (PARTITION BY e.touchpoint_id, e.provider ORDER BY e.occurred_at, e.id)
),
judged AS (
    SELECT c.touchpoint_id, c.at, CASE WHEN {scanner} THEN 1 ELSE 0 END AS scanner FROM c
),
clicks AS (
    SELECT touchpoint_id, MIN(CASE WHEN scanner = 0 THEN at END) AS first_click_at,
           SUM(scanner) AS scanner_clicks
    FROM judged GROUP BY touchpoint_id
)
INSERT INTO touchpoint_outcomes (
    touchpoint_id, campaign_id, shop, variant, arm, channel, step, customer_id, moment, due_at,
    sent, delivered, opened, first_click_at, scanner_clicks, bounced, complained, unsubscribed
)
SELECT s.id, s.campaign_id, s.shop, s.variant, s.arm, s.channel, s.step, s.customer_id, s.moment,
       s.due_at,
       {d.true("s.status = 'sent'")},
       {d.true("COALESCE(ev.delivered, 0) = 1")},
       {d.true("COALESCE(ev.opened, 0) = 1")},
       clicks.first_click_at,
       COALESCE(clicks.scanner_clicks, 0),
       {d.true("COALESCE(ev.bounced, 0) = 1")},
       {d.true("COALESCE(ev.complained, 0) = 1")},
       {d.true("COALESCE(ev.unsubscribed, 0) = 1")}
FROM scope s
LEFT JOIN ev ON ev.touchpoint_id = s.id
LEFT JOIN clicks ON clicks.touchpoint_id = s.id
"""


def _attribution_sql(d: Dialect, config: CampaignConfig) -> str:
    paid, clicked = d.ms("o.paid_at"), d.ms("x.first_click_at")
    return f"""
WITH candidates AS (
    SELECT o.id AS order_id, x.touchpoint_id, x.campaign_id, x.variant, o.paid_at, o.currency,
           o.total - o.refunded_amount AS revenue,
           ROW_NUMBER() OVER (
               PARTITION BY o.id ORDER BY x.first_click_at DESC, x.touchpoint_id DESC
           ) AS recency
    FROM orders o
    JOIN touchpoint_outcomes x
      ON x.customer_id = o.customer_id
     AND x.first_click_at IS NOT NULL
     AND {clicked} <= {paid}
     AND {paid} - {clicked} <= {window_ms(config, "x")}
    WHERE o.paid_at >= :since AND o.cancelled_at IS NULL
)
INSERT INTO attributed_orders (
    order_id, touchpoint_id, campaign_id, variant, paid_at, currency, revenue
)
SELECT order_id, touchpoint_id, campaign_id, variant, paid_at, currency, revenue
FROM candidates WHERE recency = 1
"""


def _days_sql(d: Dialect, config: CampaignConfig) -> str:
    # the comparison starts at the due time in both arms (see TouchpointOutcome.due_at)
    paid, due = d.ms("o.paid_at"), d.ms("x.due_at")

    def count(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    return f"""
WITH conversions AS (
    SELECT touchpoint_id, COUNT(*) AS orders,
           SUM(CASE WHEN currency = :currency THEN revenue ELSE 0 END) AS revenue
    FROM attributed_orders GROUP BY touchpoint_id
),
buys AS (
    SELECT x.touchpoint_id,
           SUM(CASE WHEN o.currency = :currency THEN o.total - o.refunded_amount ELSE 0 END)
               AS revenue
    FROM touchpoint_outcomes x
    JOIN orders o
      ON o.customer_id = x.customer_id
     AND o.cancelled_at IS NULL
     AND {paid} > {due}
     AND {paid} - {due} <= {window_ms(config, "x")}
    WHERE x.step = 0 AND x.due_at >= :since AND x.due_at <= :now
    GROUP BY x.touchpoint_id
)
INSERT INTO campaign_days (
    day, campaign_id, shop, variant, arm, planned, held_out, sent, delivered, opened, clicked,
    scanner_clicks, bounced, complaints, unsubscribed, converted, revenue, recipients, buyers,
    buyer_revenue
)
SELECT {d.day("x.due_at")}, x.campaign_id, x.shop, x.variant, x.arm,
       COUNT(*),
       {count("x.arm = 'holdout'")},
       {count("x.sent")},
       {count("x.delivered")},
       {count("x.opened")},
       {count("x.first_click_at IS NOT NULL")},
       SUM(x.scanner_clicks),
       {count("x.bounced")},
       {count("x.complained")},
       {count("x.unsubscribed")},
       COALESCE(SUM(conversions.orders), 0),
       COALESCE(SUM(conversions.revenue), 0),
       {count("x.step = 0 AND x.due_at <= :now")},
       {count("buys.touchpoint_id IS NOT NULL")},
       COALESCE(SUM(buys.revenue), 0)
FROM touchpoint_outcomes x
LEFT JOIN conversions ON conversions.touchpoint_id = x.touchpoint_id
LEFT JOIN buys ON buys.touchpoint_id = x.touchpoint_id
WHERE x.due_at >= :since
GROUP BY {d.day("x.due_at")}, x.campaign_id, x.shop, x.variant, x.arm
"""
