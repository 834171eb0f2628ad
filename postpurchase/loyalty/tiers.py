"""Segments: recency, frequency and monetary value per customer, RFM quintiles and tiers.

Set-based: a refresh runs a fixed handful of statements whatever the number of customers.

1. Two ``INSERT ... SELECT`` fill a temporary table with, per customer who bought in the
   trailing window, then per other customer who already has a tier: the order count and the
   spend (order totals net of refunds; paid, not cancelled, in the shop currency), the three
   quintiles (``NTILE(5)``, 5 is best: most recent, most orders, most spend; ties broken by
   customer id so results are stable), the highest tier whose criteria are all met, the
   stored tier, and the decision: upgrades happen at once; a customer below their tier
   starts a grace period (``downgrade_pending_since``) and moves down only when still below
   ``grace_days`` later; meeting the tier again clears it, so a customer hovering at a
   threshold never flaps.
2. One ``INSERT ... SELECT`` writes a ``customer_tier_history`` row per change; one
   ``UPDATE ... FROM`` rewrites the ``customer_tiers`` rows that differ and one insert adds
   customers new to tiers; one ``INSERT ... SELECT`` puts a canonical ``tier.changed`` event
   per change into the inbox (``tier_events``) for the campaign planner.

Everything happens in the caller's transaction: a refresh is all or nothing. Running it twice
with the same data changes no tier the second time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    SQLColumnExpression,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from postpurchase.loyalty.config import LoyaltyConfig
from postpurchase.loyalty.earning import add_months
from postpurchase.loyalty.tier_events import emit_tier_events
from postpurchase.store.columns import Money, UtcDateTime
from postpurchase.store.models import CustomerTier, CustomerTierChange, Order

REFRESH_WORK_MEM = "256MB"  # PostgreSQL only, for the refresh's transaction

_scores = Table(
    "loyalty_segment_scores",
    MetaData(),
    Column("customer_id", BigInteger, primary_key=True),
    Column("orders", Integer, nullable=False),
    Column("spend", Money, nullable=False),
    Column("r", Integer),
    Column("f", Integer),
    Column("m", Integer),
    Column("qualified", Integer, nullable=False),  # index into config levels
    Column("current_tier", String(64)),
    Column("current_rank", Integer),  # NULL: no tier yet, or one no longer configured
    Column("pending_since", UtcDateTime()),
    Column("since", UtcDateTime()),
    Column("new_rank", Integer),
    Column("new_pending", UtcDateTime()),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class RefreshSummary:
    """What a refresh did: tier sizes after it, and how many customers moved between tiers."""

    customers: int
    sizes: dict[str, int]
    moves: dict[tuple[str, str], int]
    pending_downgrades: int
    events: int

    def __str__(self) -> str:
        sizes = ", ".join(f"{tier} {n}" for tier, n in self.sizes.items()) or "none"
        moves = ", ".join(
            f"{src}->{dst} {n}" for (src, dst), n in sorted(self.moves.items(), key=str)
        )
        return (
            f"scored {self.customers} customer(s); tiers: {sizes}; "
            f"moves: {moves or 'none'}; downgrades in grace: {self.pending_downgrades}; "
            f"tier.changed events: {self.events}"
        )


def _rank_of(name_column: SQLColumnExpression[Any], config: LoyaltyConfig) -> ColumnElement[Any]:
    return case(
        {level.name: i for i, level in enumerate(config.tiers.levels)},
        value=name_column,
        else_=None,
    )


def _name_of(rank_column: SQLColumnExpression[Any], config: LoyaltyConfig) -> ColumnElement[Any]:
    return case(
        {i: level.name for i, level in enumerate(config.tiers.levels)},
        value=rank_column,
        else_=config.tiers.base.name,
    )


def _qualified(config: LoyaltyConfig, orders: Any, spend: Any, rfm: Any) -> ColumnElement[Any]:
    """The index of the highest level whose criteria are all met (0, the base, otherwise)."""
    whens: list[tuple[ColumnElement[bool], int]] = []
    for rank in range(len(config.tiers.levels) - 1, 0, -1):
        level = config.tiers.levels[rank]
        conditions: list[ColumnElement[bool]] = []
        if level.min_spend is not None:
            conditions.append(spend >= literal(level.min_spend, Money))
        if level.min_orders is not None:
            conditions.append(orders >= level.min_orders)
        if level.min_rfm is not None:
            conditions.append(rfm >= level.min_rfm)
        whens.append((and_(*conditions), rank))
    return case(*whens, else_=0) if whens else literal(0)


def _with_decision(rows: Any, config: LoyaltyConfig, now: datetime) -> Any:
    """``rows`` (with qualified, current_rank, pending_since) plus new_rank and new_pending.

    Upgrades happen at once; a customer below their tier keeps it until ``grace_days`` after
    the first refresh that found them below; meeting it again clears the grace period.
    """
    q = rows.c
    grace_over = and_(
        q.pending_since.is_not(None),
        q.pending_since <= now - timedelta(days=config.tiers.grace_days),
    )
    new_rank = case(
        (q.current_rank.is_(None), q.qualified),
        (q.qualified >= q.current_rank, q.qualified),
        (grace_over, q.qualified),
        else_=q.current_rank,
    )
    # Still below the tier and kept in it: the grace period runs from its first day below.
    new_pending = case(
        (
            and_(q.qualified < q.current_rank, q.qualified < new_rank),
            func.coalesce(q.pending_since, literal(now, UtcDateTime())),
        ),
        else_=None,
    )
    return select(*q, new_rank.label("new_rank"), new_pending.label("new_pending"))


def _fill_scores(session: Session, config: LoyaltyConfig, now: datetime) -> None:
    """Score and decide, in two INSERT ... SELECTs into the temporary table.

    First everyone who bought in the window (joined to their stored tier by primary key),
    then everyone else who has a tier (scores 0). No join between two subqueries: SQLite
    answers those with nested loops over the whole population.
    """
    window_start = add_months(now, -config.tiers.window_months)
    stats = (
        select(
            Order.customer_id,
            func.max(Order.paid_at).label("last_paid"),
            func.count().label("orders"),
            # Rounded so SQLite's binary floats compare with thresholds as decimals do.
            func.round(func.sum(Order.total - Order.refunded_amount), 4).label("spend"),
        )
        .where(
            Order.customer_id.is_not(None),
            Order.paid_at > window_start,
            Order.paid_at <= now,
            Order.cancelled_at.is_(None),
            Order.currency == config.shop_currency,
        )
        .group_by(Order.customer_id)
        .subquery()
    )

    def quintile(column: Any) -> Any:
        return func.ntile(5).over(order_by=(column, stats.c.customer_id))

    scored = select(
        stats.c.customer_id,
        stats.c.orders,
        stats.c.spend,
        quintile(stats.c.last_paid).label("r"),
        quintile(stats.c.orders).label("f"),
        quintile(stats.c.spend).label("m"),
    ).subquery()
    t = CustomerTier
    rfm = scored.c.r + scored.c.f + scored.c.m
    buyers = (
        select(
            *scored.c,
            _qualified(config, scored.c.orders, scored.c.spend, rfm).label("qualified"),
            t.tier.label("current_tier"),
            _rank_of(t.tier, config).label("current_rank"),
            t.downgrade_pending_since.label("pending_since"),
            t.since,
        )
        .outerjoin(t, t.customer_id == scored.c.customer_id)
        .subquery()
    )
    columns = [c.name for c in _scores.c]
    session.execute(_scores.insert().from_select(columns, _with_decision(buyers, config, now)))
    s = _scores.c
    lapsed = (
        select(
            t.customer_id,
            literal(0).label("orders"),
            literal(0, Money).label("spend"),
            cast(null(), Integer).label("r"),
            cast(null(), Integer).label("f"),
            cast(null(), Integer).label("m"),
            _qualified(config, literal(0), literal(0), literal(0)).label("qualified"),
            t.tier.label("current_tier"),
            _rank_of(t.tier, config).label("current_rank"),
            t.downgrade_pending_since.label("pending_since"),
            t.since,
        )
        .where(~select(s.customer_id).where(s.customer_id == t.customer_id).exists())
        .subquery()
    )
    session.execute(_scores.insert().from_select(columns, _with_decision(lapsed, config, now)))
    if session.get_bind().dialect.name == "postgresql":
        # Temporary tables are never analysed automatically; the writes below join on it.
        session.execute(text(f"ANALYZE {_scores.name}"))


def _changed(config: LoyaltyConfig) -> ColumnElement[bool]:
    s = _scores.c
    return or_(
        and_(s.current_tier.is_(None), s.new_rank > 0),
        and_(s.current_tier.is_not(None), s.current_tier != _name_of(s.new_rank, config)),
    )


def _write_tiers(session: Session, config: LoyaltyConfig, now: datetime) -> None:
    s = _scores.c
    changed = _changed(config)
    session.execute(
        insert(CustomerTierChange).from_select(
            ["customer_id", "from_tier", "to_tier", "changed_at"],
            select(
                s.customer_id,
                # No tier row yet means the base tier (and the event needs a from_tier).
                func.coalesce(s.current_tier, config.tiers.base.name),
                _name_of(s.new_rank, config),
                literal(now, UtcDateTime()),
            ).where(changed),
        )
    )
    # Customers with a tier row: rewrite only rows whose tier, scores or grace changed, so a
    # steady-state refresh writes little. Then insert rows for customers new to tiers.
    t = CustomerTier
    new_name = _name_of(s.new_rank, config)
    stamp = literal(now, UtcDateTime())
    session.execute(
        update(t)
        .where(
            t.customer_id == s.customer_id,
            or_(
                changed,
                t.recency_score.is_distinct_from(s.r),
                t.frequency_score.is_distinct_from(s.f),
                t.monetary_score.is_distinct_from(s.m),
                t.trailing_orders != s.orders,
                t.trailing_spend != s.spend,
                t.downgrade_pending_since.is_distinct_from(s.new_pending),
            ),
        )
        .values(
            tier=new_name,
            since=case((changed, stamp), else_=t.since),
            recency_score=s.r,
            frequency_score=s.f,
            monetary_score=s.m,
            trailing_spend=s.spend,
            trailing_orders=s.orders,
            downgrade_pending_since=s.new_pending,
            updated_at=stamp,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(t).from_select(
            [
                "customer_id",
                "tier",
                "since",
                "recency_score",
                "frequency_score",
                "monetary_score",
                "trailing_spend",
                "trailing_orders",
                "updated_at",
            ],
            select(s.customer_id, new_name, stamp, s.r, s.f, s.m, s.spend, s.orders, stamp).where(
                s.current_tier.is_(None)
            ),
        )
    )


def refresh_segments(session: Session, *, config: LoyaltyConfig, now: datetime) -> RefreshSummary:
    """Recompute scores and tiers as of ``now`` and record every change (see module doc).

    Returns what changed. Callers run one refresh at a time (the DAG has one active run).
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # The per-customer aggregate over all orders in the window and the three quintile
        # sorts spill to disk with the default 4 MB; this transaction may use more.
        session.execute(text(f"SET LOCAL work_mem = '{REFRESH_WORK_MEM}'"))
    _scores.drop(connection, checkfirst=True)
    _scores.create(connection)
    _fill_scores(session, config, now)
    s = _scores.c
    new_name = _name_of(s.new_rank, config)
    old_name = func.coalesce(s.current_tier, config.tiers.base.name)
    moves = Counter[tuple[str, str]]()
    for src, dst, n in session.execute(
        select(old_name, new_name, func.count())
        .where(_changed(config))
        .group_by(old_name, new_name)
    ):
        moves[(src, dst)] = n
    customers = session.scalar(select(func.count()).select_from(_scores)) or 0
    pending = session.scalar(select(func.count()).where(s.new_pending.is_not(None))) or 0
    last_change = session.scalar(select(func.max(CustomerTierChange.id))) or 0
    _write_tiers(session, config, now)
    emit_tier_events(session, now, last_change)
    _scores.drop(connection)
    sizes = dict(
        session.execute(
            select(CustomerTier.tier, func.count())
            .group_by(CustomerTier.tier)
            .order_by(_rank_of(CustomerTier.tier, config))
        ).all()
    )
    return RefreshSummary(
        customers=customers,
        sizes={str(k): int(v) for k, v in sizes.items()},
        moves=dict(moves),
        pending_downgrades=pending,
        events=sum(moves.values()),  # one event per change, by construction
    )
