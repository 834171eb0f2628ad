"""The claims (inbox and dispatch), the touchpoint cancels and dispatch's reads keep their
plans on tables PostgreSQL has no statistics for (new tables that autovacuum has not analysed
yet, or a server that runs it late).

Without statistics the planner guesses that an equality matches 0.5% of rows. With a plain
``status = 'pending'`` the claim then fetched and sorted every pending row on each claim, and a
cancel walked every planned touchpoint through ``ix_touchpoints_due``: both grew with the
backlog. Here the tables are new, in a schema of their own, filled in SQL and never analysed.

Plans made once and kept are checked too: inside ``cached_key_checks`` (a drain batch) no
statement of ours is prepared, and the foreign key checks PostgreSQL plans once per connection
look the referenced row up by its key even when that plan was made while the tables were
nearly empty, with no statistics or with statistics of those nearly empty tables.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sent_statements import statements_sent_with_parameters
from sqlalchemy import Engine, create_engine, event, select, text

from postpurchase.campaigns.config import load_campaigns
from postpurchase.dispatch.chunk_rows import _recent_sends, _touchpoints, read_touchpoints
from postpurchase.dispatch.deciding import GatePolicy, recent_sends
from postpurchase.dispatch.marking import ChunkWriter
from postpurchase.dispatch.outcomes import Outcome
from postpurchase.dispatch.sending import ChunkLease, outcome_rows
from postpurchase.loyalty.ledger_rows import (
    _PG_BONUS_LINES,
    _PG_HELD_OF_CUSTOMERS,
    _PG_HELD_OF_ORDERS,
    bonus_lines,
    holdings,
)
from postpurchase.processing.planning import (
    _PG_EARNED,
    PG_CANCEL,
    Cancellation,
    _points_earned,
    cancel_touchpoints,
)
from postpurchase.provider_feedback import store_twilio_status
from postpurchase.rewards.referrals import _PG_REFERRERS, _referrers
from postpurchase.rewards.used_codes import _PG_CODES, _usable_codes
from postpurchase.settings import PROJECT_ROOT, parse_database_url
from postpurchase.store.claims import claim_due_touchpoints
from postpurchase.store.database import (
    cached_key_checks,
    make_engine,
    session_factory,
    transaction,
)
from postpurchase.store.driver_statements import _compiled
from postpurchase.store.inbox_claims import (
    claim_inbox_rows,
    claim_statement,
    reclaim_expired_inbox_rows,
)
from postpurchase.store.membership import among, array_literal, keys_among
from postpurchase.store.models import Base, Channel, Customer, Order
from postpurchase.store.planner_settings import WITHOUT_SORT
from postpurchase.store.statements import _json_update, update_by_id
from postpurchase.store.wave_commit import wave_statement

pytestmark = pytest.mark.postgres

SCHEMA = "plans_without_statistics"
INBOX_ROWS = 60_000
ORDERS = 12_000  # one customer each; five planned touchpoints each, one of them win-back
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LEDGER_ROWS = 60_000  # five per order: enough for a batch's lookups to pass jit_above_cost


@pytest.fixture
def fresh() -> Iterator[Engine]:
    """New, unanalysed tables in their own schema of the test database."""
    url = os.environ.get("POSTPURCHASE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("POSTPURCHASE_TEST_POSTGRES_URL is not set")
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    engine = create_engine(url, connect_args={"options": f"-c search_path={SCHEMA}"})
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
        admin.dispose()


@pytest.fixture
def store_engine(fresh: Engine) -> Iterator[Engine]:
    """An engine as the store makes them (``make_engine``), on the new tables."""
    engine = make_engine(parse_database_url(str(fresh.url)))

    @event.listens_for(engine, "connect")
    def _in_schema(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET search_path TO {SCHEMA}")
        dbapi_conn.commit()

    try:
        yield engine
    finally:
        engine.dispose()


def _fill(engine: Engine, *, analysed: bool = False) -> None:
    """Rows in every table the tests read, without statistics (unless the test ``analysed``
    some tables before: their statistics are kept as they were, of nearly empty tables)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO inbox_events (source, dedupe_key, event_type, payload, status, "
                "attempts) SELECT 'shopify', 'shopify:orders/paid:' || n, 'order.paid', "
                "jsonb_build_object('n', n), CASE WHEN n <= :done THEN 'done' ELSE 'pending' END,"
                " 0 FROM generate_series(1, :rows) AS n"
            ),
            {"rows": INBOX_ROWS, "done": INBOX_ROWS // 4},
        )
        conn.execute(
            text(
                "INSERT INTO customers (source, external_id, email_marketing_consent_state, "
                "sms_marketing_consent_state, sms_consent_state) "
                "SELECT 'shopify', 'c' || n, 'unknown', 'unknown', 'unknown' "
                "FROM generate_series(1, :n) AS n"
            ),
            {"n": ORDERS},
        )
        conn.execute(
            text(
                "INSERT INTO orders (source, external_id, customer_id, currency, subtotal, total,"
                " total_tax, total_discounts, total_shipping, refunded_amount) "
                "SELECT 'shopify', 'o' || n, n, 'USD', 10, 10, 0, 0, 0, 0 "
                "FROM generate_series(1, :n) AS n"
            ),
            {"n": ORDERS},
        )
        conn.execute(
            text(
                "INSERT INTO touchpoints (subject_key, campaign_id, step, channel, customer_id,"
                " order_id, due_at, status, attempts) "
                "SELECT 'order:' || o, c, 0, 'email', o, o, :now + o * interval '1 minute', "
                "'planned', 0 FROM generate_series(1, :n) AS o, unnest(CAST(:campaigns AS "
                "TEXT[])) AS c"
            ),
            {
                "n": ORDERS,
                "now": NOW,
                "campaigns": ["delivery_checkin", "setup_tips", "review_request", "win_back", "x"],
            },
        )
        statistics = conn.execute(
            text("SELECT count(*) FROM pg_stats WHERE schemaname = :schema"), {"schema": SCHEMA}
        ).scalar_one()
    if not analysed:
        assert statistics == 0, "the tables must have no statistics for this test to mean anything"


def _every(_statement: str) -> bool:
    return True


def _plan(
    engine: Engine, statement: str, parameters: Any, before: list[tuple[str, Any]] = ()
) -> dict[str, Any]:
    """The statement's plan as EXPLAIN gives it, planned after the statements ``before`` it
    in its transaction (settings it made for itself)."""
    with engine.connect() as conn:
        for sent, sent_with in before:
            conn.exec_driver_sql(sent, sent_with)
        [[plan]] = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).all()
        conn.rollback()
    return plan[0]


def _plan_nodes(
    engine: Engine, statement: str, parameters: Any, before: list[tuple[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Every node of the statement's plan (init plans and subplans included)."""
    nodes, todo = [], [_plan(engine, statement, parameters, before)["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo += node.get("Plans", [])
    return nodes


def test_the_claim_walks_its_index_in_order_and_stops_at_its_limit(fresh):
    _fill(fresh)
    store = session_factory(fresh)
    with statements_sent_with_parameters(fresh, _every) as sent, transaction(store) as session:
        reclaim_expired_inbox_rows(session, now=NOW, max_attempts=3)
        rows = claim_inbox_rows(session, worker="w", now=NOW, limit=1000, after_id=INBOX_ROWS // 4)
    assert [row.id for row in rows] == list(range(INBOX_ROWS // 4 + 1, INBOX_ROWS // 4 + 1001))

    # run by the driver (``driver_statements``), after the statement that turns sorting off
    sql, literals = _compiled(claim_statement("postgresql", after=True, only=False), fresh.dialect)
    assert "LIMIT" in sql and "status = 'pending'" in sql
    values = {**literals, "worker": "w", "now": NOW, "limit": 1000, "after_id": INBOX_ROWS // 4}
    without_sort, _ = _compiled(WITHOUT_SORT, fresh.dialect)
    nodes = _plan_nodes(fresh, sql, {**values, "previous_sort": "on"}, before=[(without_sort, {})])
    kinds = [node["Node Type"] for node in nodes]
    assert "Sort" not in kinds  # no sort of every pending row above the last claim
    assert "Bitmap Heap Scan" not in kinds
    walks = [n for n in nodes if n.get("Index Name") == "ix_inbox_events_claimable"]
    assert [n["Node Type"] for n in walks] == ["Index Scan"]
    assert "Limit" in kinds
    # Taking back the rows an earlier version's crashed claimant left (and giving up on some)
    # looks at claimed rows only, not at the whole inbox.
    reclaims = [s for s in sent if s[0].startswith("UPDATE inbox_events")]
    assert len(reclaims) == 2
    for statement in reclaims:
        nodes = _plan_nodes(fresh, *statement, before=sent[: sent.index(statement)])
        assert "Seq Scan" not in [node["Node Type"] for node in nodes]
        assert "ix_inbox_events_claimed" in [node.get("Index Name") for node in nodes]


def test_the_dispatch_claim_walks_the_due_index_and_stops_at_its_limit(fresh):
    """A dispatch claim takes the longest overdue touchpoints by walking
    ``ix_touchpoints_due`` in order up to its limit: sorted, every claim fetched and sorted all
    the due touchpoints. Sorting is back on for what the transaction plans next."""
    _fill(fresh)
    store = session_factory(fresh)
    everything_due = NOW + timedelta(minutes=ORDERS + 1)
    with statements_sent_with_parameters(fresh, _every) as sent, transaction(store) as session:
        ids = claim_due_touchpoints(
            session, worker="w", now=everything_due, limit=500, lease=timedelta(minutes=5)
        )
        assert _planner_settings(session) == ("on", "on")
    # the five touchpoints of each of the first hundred orders, due a minute apart
    assert ids == sorted(order + ORDERS * n for n in range(5) for order in range(1, 101))

    [claim] = [
        s
        for s in sent
        if s[0].startswith("UPDATE touchpoints SET status=")
        and "claimed_by" in s[0]
        and "touchpoints.due_at <=" in s[0]
    ]
    nodes = _plan_nodes(fresh, *claim, before=sent[: sent.index(claim)])
    kinds = [node["Node Type"] for node in nodes]
    assert "Sort" not in kinds  # no sort of every due touchpoint
    assert "Bitmap Heap Scan" not in kinds
    walks = [n for n in nodes if n.get("Index Name") == "ix_touchpoints_due"]
    assert [n["Node Type"] for n in walks] == ["Index Scan"]
    assert "Limit" in kinds


def _planner_settings(session: Any) -> tuple[str, str]:
    return tuple(
        session.execute(
            text("SELECT current_setting('enable_sort'), current_setting('enable_bitmapscan')")
        ).one()
    )


def test_the_dispatch_claim_walks_the_due_index_for_rows_whose_lease_ran_out(fresh):
    """Before claiming, a dispatch claim looks for ``sending`` rows whose lease ran out,
    claimed rows that ran out too often, and claimed rows that ran out: each a plain walk of
    their part of ``ix_touchpoints_due``, which marks the entries dead rows left as it passes
    them (a bitmap scan read every claimed and sending entry any send ever left, at every
    claim, until VACUUM). The claim of rows whose lease ran out stops at its limit."""
    _fill(fresh)
    with fresh.begin() as conn:
        for status in ("claimed", "sending", "sent"):  # sent, a claimed and a sending entry left
            conn.execute(text(f"UPDATE touchpoints SET status = '{status}' WHERE id <= 6000"))
        conn.execute(  # held by a worker that died
            text(
                "UPDATE touchpoints SET status = 'claimed', claimed_by = 'dead', "
                "lease_until = :ran_out, attempts = 1 WHERE id > 6000 AND id <= 6010"
            ),
            {"ran_out": NOW - timedelta(minutes=1)},
        )
    store = session_factory(fresh)
    with statements_sent_with_parameters(fresh, _every) as sent, transaction(store) as session:
        ids = claim_due_touchpoints(
            session, worker="w", now=NOW, limit=500, lease=timedelta(minutes=5)
        )
        assert _planner_settings(session) == ("on", "on")
    assert ids == list(range(6001, 6011))  # taken back; nothing else is due yet

    looks = [s for s in sent if s[0].startswith("UPDATE touchpoints") and "lease_until <" in s[0]]
    assert len(looks) == 3  # sending run out, claimed given up, claimed taken back
    for statement in looks:
        nodes = _plan_nodes(fresh, *statement, before=sent[: sent.index(statement)])
        kinds = [node["Node Type"] for node in nodes]
        assert "Bitmap Heap Scan" not in kinds and "Seq Scan" not in kinds
        assert "Sort" not in kinds
        walks = [n for n in nodes if n.get("Index Name") == "ix_touchpoints_due"]
        assert [n["Node Type"] for n in walks] == ["Index Scan"]


def test_a_dispatch_claim_filled_by_rows_whose_lease_ran_out_puts_the_settings_back(fresh):
    _fill(fresh)
    with fresh.begin() as conn:
        conn.execute(
            text(
                "UPDATE touchpoints SET status = 'claimed', claimed_by = 'dead', "
                "lease_until = :ran_out, attempts = 1 WHERE id <= 20"
            ),
            {"ran_out": NOW - timedelta(minutes=1)},
        )
    store = session_factory(fresh)
    everything_due = NOW + timedelta(minutes=ORDERS + 1)
    with transaction(store) as session:
        ids = claim_due_touchpoints(
            session, worker="w", now=everything_due, limit=10, lease=timedelta(minutes=5)
        )
        assert _planner_settings(session) == ("on", "on")
    assert len(ids) == 10 and max(ids) <= 20  # only rows whose lease ran out


@pytest.mark.parametrize(
    ("event", "level", "index", "per_key"),
    [
        ("order.placed", "customer", "ix_touchpoints_planned_customer", 1),  # win-back
        ("order.refunded", "order", "ix_touchpoints_planned_order", 3),  # checkin, tips, review
    ],
)
def test_a_cancel_looks_up_its_keys_not_every_planned_touchpoint(
    fresh, event, level, index, per_key
):
    _fill(fresh)
    config = load_campaigns(PROJECT_ROOT / "config" / "campaigns.yaml")
    keys = range(5_000, 5_250)
    hits = [Cancellation(event, order_id=k, customer_id=k) for k in keys]
    store = session_factory(fresh)
    with transaction(store) as session:
        assert cancel_touchpoints(session, hits, config) == per_key * len(keys)

    # run by the driver (``driver_statements``), built once with its lists as parameters
    campaigns = [
        c.id
        for c in config.campaigns
        if event in c.cancel_on and c.customer_level == (level == "customer")
    ]
    sql, literals = _compiled(PG_CANCEL[f"{level}_id"], fresh.dialect)
    lists = {"keys": array_literal(keys), "campaigns": array_literal(campaigns)}
    nodes = _plan_nodes(fresh, sql, {**literals, **lists, "reason": "cancelled"})
    scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
    assert "ix_touchpoints_due" not in scanned  # no walk of every planned touchpoint
    assert "Seq Scan" not in scanned
    assert index in scanned, f"{level}-level cancels look each {level} up: {scanned}"


def test_a_wave_commit_finds_its_rows_by_id_not_among_every_held_row(fresh, store_engine):
    """A sending wave's commit (the answers of one wave recorded, the next wave marked
    ``sending``) looks its few rows up by id: not through the status index, which walked
    every row held by every worker, twice per commit."""
    _fill(fresh)
    worker, held = "bench/0", range(1, 3_001)
    with fresh.begin() as conn:
        conn.execute(
            text(
                "UPDATE touchpoints SET status = 'claimed', claimed_by = :worker "
                "WHERE id BETWEEN 1 AND :last"
            ),
            {"worker": worker, "last": held[-1]},
        )
        conn.execute(text("UPDATE touchpoints SET status = 'sending' WHERE id <= 4"))
    lease = timedelta(minutes=5)
    writer = ChunkWriter(
        session_factory(store_engine),
        ChunkLease(worker, held, lease, lambda: NOW),
        lease,
        lambda: NOW,
    )
    writer.commit([])  # the chunk's first commit renews its lease
    sent = [Outcome.sent(n, f"m{n}", NOW) for n in range(1, 5)]
    writer.add(sent)
    assert writer.commit(list(range(5, 9))) == set(range(5, 9))
    writer.close()
    assert writer.counts == {"sent": 4}

    commit = wave_statement(
        [(rows, also_from) for _, rows, also_from in outcome_rows(sent)],
        range(9, 13),
        worker=worker,
        lease_until=NOW + lease,
        dialect=fresh.dialect,
    )
    assert commit is not None
    nodes = _plan_nodes(fresh, *commit)
    scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
    assert scanned & {"Bitmap Heap Scan", "Index Scan"}
    assert scanned - {"Bitmap Heap Scan", "Index Scan", "CTE Scan"} == {"pk_touchpoints"}


@pytest.mark.parametrize("statistics", ["none", "of the nearly empty table"])
def test_a_wave_commit_s_plan_kept_for_a_chunk_finds_its_rows_by_id(fresh, statistics):
    """The plan a chunk keeps for its wave commits (``wave_commit.keep_plans``), made once for
    all its parameters, looks the rows up through the primary key on a grown table: without
    statistics, and with statistics taken while the table held one row (autovacuum's first
    ANALYZE of a new table, not repeated since)."""
    if statistics != "none":
        with fresh.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (id, source, external_id, "
                    "email_marketing_consent_state, sms_marketing_consent_state, "
                    "sms_consent_state) VALUES (:n, 'shopify', 'first', 'unknown', 'unknown', "
                    "'unknown')"
                ),
                {"n": ORDERS + 1},
            )
            conn.execute(
                text(
                    "INSERT INTO touchpoints (subject_key, campaign_id, step, channel, "
                    "customer_id, due_at, status, attempts) "
                    "VALUES ('first', 'c', 0, 'email', :n, :now, 'planned', 0)"
                ),
                {"n": ORDERS + 1, "now": NOW},
            )
            conn.execute(text("ANALYZE touchpoints"))
    _fill(fresh, analysed=statistics != "none")
    worker = "bench/0"
    with fresh.begin() as conn:
        conn.execute(
            text(
                "UPDATE touchpoints SET status = 'claimed', claimed_by = :worker "
                "WHERE id BETWEEN 1 AND 3000"
            ),
            {"worker": worker},
        )
    sent = [Outcome.sent(n, f"m{n}", NOW) for n in range(1, 5)]
    commit = wave_statement(
        [(rows, also_from) for _, rows, also_from in outcome_rows(sent)],
        range(5, 9),
        worker=worker,
        lease_until=NOW + timedelta(minutes=5),
        dialect=fresh.dialect,
    )
    assert commit is not None
    sql, values = commit
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
    prepared = re.sub(r"%\((\w+)\)s", lambda name: f"${names.index(name[1]) + 1}", sql)
    with fresh.connect() as conn:
        driver = conn.connection.dbapi_connection
        with psycopg.ClientCursor(driver) as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE wave AS {prepared}".replace("%", "%%"))
            arguments = ", ".join(f"%({name})s" for name in names)
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE wave({arguments})", values)
            [[plan]] = cursor.fetchall()
        conn.rollback()
    nodes, todo = [], [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo += node.get("Plans", [])
    scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
    assert scanned & {"Bitmap Heap Scan", "Index Scan"}
    assert scanned - {"Bitmap Heap Scan", "Index Scan", "CTE Scan"} == {"pk_touchpoints"}


def test_a_chunk_s_touchpoints_are_read_by_id_not_among_every_held_row(fresh):
    """A chunk reads its rows by their ids, not every row held by every worker through the
    status index."""
    _fill(fresh)
    with fresh.begin() as conn:
        conn.execute(
            text(
                "UPDATE touchpoints SET status = 'claimed', claimed_by = 'w' || (id % 6) "
                "WHERE id <= 3000"
            )
        )
    store = session_factory(fresh)
    chunk = range(6, 3_001, 6)  # worker w0's rows
    with transaction(store) as session:
        rows = read_touchpoints(session, "w0", chunk)
    assert sorted(row.id for row in rows) == list(chunk)

    # run by the driver (``driver_statements``), built once with its ids as a parameter
    sql, literals = _compiled(_touchpoints("postgresql"), fresh.dialect)
    nodes = _plan_nodes(fresh, sql, {**literals, "ids": array_literal(chunk), "worker": "w0"})
    scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
    assert "ix_touchpoints_due" not in scanned  # no walk of every held row
    assert "pk_touchpoints" in scanned


def test_a_chunk_s_recent_sends_are_read_by_customer_not_among_every_sent_one(fresh):
    """The smart-sending check reads the chunk's customers' touchpoints sent lately through
    the customers' index, not every sent touchpoint through the status index."""
    _fill(fresh)
    with fresh.begin() as conn:
        conn.execute(
            text("UPDATE touchpoints SET status = 'sent', sent_at = :at WHERE customer_id <= :n"),
            {"at": NOW - timedelta(hours=1), "n": ORDERS - 1_000},
        )
    store = session_factory(fresh)
    customers = range(5_000, 5_500)
    with transaction(store) as session:
        recent = recent_sends(session, customers, NOW, lookup=lambda _: None, policy=GatePolicy())
    assert recent == {(c, Channel.EMAIL): [NOW - timedelta(hours=1)] * 5 for c in customers}

    # run by the driver (``driver_statements``), built once with its ids as a parameter
    since = NOW - max(GatePolicy().smart_email, GatePolicy().smart_sms)
    sql, literals = _compiled(_recent_sends("postgresql"), fresh.dialect)
    nodes = _plan_nodes(fresh, sql, {**literals, "ids": array_literal(customers), "since": since})
    scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
    assert "ix_touchpoints_due" not in scanned  # no walk of every sent touchpoint
    assert "ix_touchpoints_customer_id" in scanned


def test_a_provider_s_message_id_finds_its_touchpoint_through_the_answered_index(fresh):
    """A Twilio status callback finds its touchpoint through the partial index of the rows that
    have a provider message id, not by scanning every touchpoint."""
    _fill(fresh)
    with fresh.begin() as conn:
        conn.execute(
            text(
                "UPDATE touchpoints SET status = 'sent', provider_message_id = 'SM' || id "
                "WHERE id % 2 = 0"
            )
        )
    store = session_factory(fresh)
    with statements_sent_with_parameters(fresh, _every) as sent:
        store_twilio_status(store, {"MessageStatus": "delivered"}, "SM42", "delivered")
    with fresh.connect() as conn:
        found = conn.execute(text("SELECT touchpoint_id FROM message_events")).scalars().all()
    assert found == [42]

    [lookup] = [s for s in sent if "touchpoints.provider_message_id" in s[0]]
    nodes = _plan_nodes(fresh, *lookup)
    scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
    assert scanned - {"Bitmap Heap Scan"} == {"ix_touchpoints_provider_message_id"}


def test_batch_lookups_by_key_and_by_list_use_their_indexes(fresh):
    """What a batch reads by its keys (customers and orders by platform id, rows by a list of
    ids of another table) is looked up, not found by scanning tables that grow."""
    _fill(fresh)
    store = session_factory(fresh)
    keys = [("shopify", "", f"c{n}") for n in range(5_000, 5_250)]
    with store() as session:
        by_key = select(Customer.id).where(
            keys_among(session, (Customer.source, Customer.shop, Customer.external_id), keys)
        )
        by_list = select(Order.id).where(among(session, Order.customer_id, range(5_000, 5_250)))
        statements = [(query, query.compile(fresh)) for query in (by_key, by_list)]
        assert len(session.execute(by_key).all()) == len(session.execute(by_list).all()) == 250
    for query, compiled in statements:
        nodes = _plan_nodes(fresh, str(compiled), compiled.params)
        assert "Seq Scan" not in [node["Node Type"] for node in nodes], str(query)


def test_a_batch_writes_its_changed_rows_back_by_id(fresh):
    """The rows a batch changed are updated through the primary key, not found by scanning
    the table they are in."""
    _fill(fresh)
    store = session_factory(fresh)
    changed = [{"id": n, "name": f"#{n}", "total": 12} for n in range(5_000, 5_250)]
    with transaction(store) as session:
        update_by_id(session, Order, changed)
        assert session.scalar(select(Order.name).where(Order.id == 5_100)) == "#5100"

    # run by the driver (``driver_statements``), built once per table and columns
    sql, literals = _compiled(
        _json_update(Order.__table__, ("name", "total"), fresh.dialect), fresh.dialect
    )
    rows = json.dumps([[row["id"], row["name"], row["total"]] for row in changed])
    nodes = _plan_nodes(fresh, sql, {**literals, "rows": rows})
    scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
    assert "Seq Scan" not in scanned
    assert "pk_orders" in scanned


def test_the_lines_awards_are_computed_from_are_read_by_their_orders(fresh):
    """The lines bonus conditions read for a batch's paid orders are looked up by order, with
    their orders by id: no table that grows with the shop is scanned."""
    _fill(fresh)
    with fresh.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO order_items (order_id, external_id, title, quantity, unit_price) "
                "SELECT o, 'l' || k, 'Beans', 1, 15 FROM generate_series(1, :n) AS o, "
                "generate_series(1, 2) AS k"
            ),
            {"n": ORDERS},
        )
    store = session_factory(fresh)
    with store() as session:
        query = bonus_lines(session, range(5_000, 5_250))
        assert len(session.execute(query).all()) == 500
    # as a batch runs it on PostgreSQL: by the driver, built once with its list as a parameter
    statement, literals = _compiled(_PG_BONUS_LINES, fresh.dialect)
    nodes = _plan_nodes(
        fresh, statement, {**literals, "order_ids": array_literal(range(5_000, 5_250))}
    )
    assert "Seq Scan" not in [node["Node Type"] for node in nodes]
    # the lines reached through their orders: named by the list too, on larger tables they
    # were looked up with the whole list as a condition for every order, sorted each time
    lookups = [
        node.get("Index Cond", "") + node.get("Recheck Cond", "")
        for node in nodes
        if node.get("Relation Name") == "order_items"
    ]
    assert lookups and not any("ANY" in lookup for lookup in lookups)


def test_a_small_ledger_is_read_through_its_indexes(fresh):
    """What a batch reads from the ledger by order and by customer is looked up through their
    indexes even while the ledger is small: scanned whole, every row was checked against every
    id of the batch in turn."""
    _fill(fresh)
    ledger_rows = 8_000  # some 70 pages: under the size at which a plain list takes the index
    with fresh.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO loyalty_ledger (customer_id, order_id, kind, points, cause) "
                "SELECT n, n, 'award', 10, 'award:order:' || n FROM generate_series(1, :n) AS n"
            ),
            {"n": ledger_rows},
        )
    store = session_factory(fresh)
    wanted = list(range(5_000, 6_000))
    with store() as session:
        held = holdings(session, wanted, wanted)
        earned = _points_earned(session, wanted)
    assert held.balances == dict.fromkeys(wanted, 10) == earned
    # run by the driver (``driver_statements``), built once with their lists as parameters
    lists = {"order_ids": array_literal(wanted), "customer_ids": array_literal(wanted)}
    for read in (_PG_HELD_OF_ORDERS, _PG_HELD_OF_CUSTOMERS, _PG_EARNED):
        statement, literals = _compiled(read, fresh.dialect)
        nodes = _plan_nodes(fresh, statement, {**literals, **lists})
        scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
        assert "Seq Scan" not in scanned, statement
        assert scanned & {"ix_loyalty_ledger_order_id", "ix_loyalty_ledger_customer_id"}


def test_inside_cached_key_checks_our_statements_are_still_planned_at_each_run(store_engine):
    """A statement run again and again inside is planned anew each time, for the table as it
    is then: none is prepared (its generic plan would be kept with it). Outside, the store's
    connections prepare their repeated statements again, with custom plans forced."""
    lookup = select(Customer.id).where(Customer.email == "ana@example.com")
    prepared = text("SELECT count(*) FROM pg_prepared_statements")
    with transaction(session_factory(store_engine)) as session:
        with cached_key_checks(session):
            for _ in range(20):
                session.execute(lookup).all()
            assert session.execute(prepared).scalar_one() == 0
        assert session.scalar(text("SELECT current_setting('plan_cache_mode')")) == (
            "force_custom_plan"
        )
        for _ in range(20):
            session.execute(lookup).all()
        assert session.execute(prepared).scalar_one() == 1


@pytest.mark.parametrize("statistics", ["none", "of the nearly empty tables"])
def test_foreign_key_checks_planned_on_empty_tables_look_rows_up_by_id(
    fresh, store_engine, statistics
):
    """PostgreSQL plans a foreign key's check once per connection and, inside
    ``cached_key_checks``, keeps that plan: made while the referenced tables were nearly empty,
    it must still look the row up through the primary key, not scan the table, once the
    tables have grown: without statistics, and with statistics taken while the tables held a
    row each (autovacuum's first ANALYZE of new tables, not repeated since), which made that
    plan a scan of the table."""
    store = session_factory(store_engine)
    first = ORDERS + 1  # ids _fill does not take
    with transaction(store) as session:
        session.execute(
            text(
                "INSERT INTO customers (id, source, external_id, email_marketing_consent_state,"
                " sms_marketing_consent_state, sms_consent_state) "
                "VALUES (:n, 'shopify', 'first', 'unknown', 'unknown', 'unknown')"
            ),
            {"n": first},
        )
        session.execute(
            text(
                "INSERT INTO orders (id, source, external_id, customer_id, currency, subtotal, "
                "total, total_tax, total_discounts, total_shipping, refunded_amount) "
                "VALUES (:n, 'shopify', 'first', :n, 'USD', 10, 10, 0, 0, 0, 0)"
            ),
            {"n": first},
        )
    touchpoint = text(
        "INSERT INTO touchpoints (subject_key, campaign_id, step, channel, customer_id, "
        "order_id, due_at, status, attempts) "
        "VALUES ('order:' || :n, :campaign, 0, 'email', :n, :n, :now, 'planned', 0)"
    )
    if statistics != "none":
        with fresh.begin() as conn:
            conn.execute(text("ANALYZE customers, orders"))
    # Plenty of checks while the tables hold one customer and one order, in transactions of
    # their own, as batches: enough for PostgreSQL to settle on the plan it then keeps.
    for campaign in range(10):
        with transaction(store) as session, cached_key_checks(session):
            session.execute(touchpoint, {"n": first, "campaign": f"c{campaign}", "now": NOW})
    _fill(fresh, analysed=statistics != "none")
    with transaction(store) as session:
        with cached_key_checks(session):
            for n in range(5_000, 5_050):
                session.execute(touchpoint, {"n": n, "campaign": "checked", "now": NOW})
        scans = session.execute(
            text(
                "SELECT relname, seq_scan, idx_scan FROM pg_stat_xact_user_tables "
                "WHERE schemaname = :schema AND relname IN ('customers', 'orders')"
            ),
            {"schema": SCHEMA},
        ).all()
    # The counts may include this connection's earlier transactions (not yet reported): the
    # ten checks made while each table held one row, which with statistics scanned its page.
    earlier = 0 if statistics == "none" else 10
    assert [(table, seq_scan <= earlier) for table, seq_scan, _ in sorted(scans)] == [
        ("customers", True),
        ("orders", True),
    ]
    assert all(idx_scan >= 50 for _, _, idx_scan in scans)


def test_the_codes_of_a_batch_are_looked_up_without_case_through_their_indexes(fresh):
    """A batch's discount codes are looked up among reward and referral codes (compared
    without case) through the indexes on ``upper(code)``, not by scanning both tables."""
    _fill(fresh)
    with fresh.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO redemptions (idempotency_key, customer_id, reward, title, "
                "description, points, platform, code, status, attempts, expires_at) "
                "SELECT 'k' || n, n, 'five_off', '', '', 500, 'shopify', 'RW-' || n, 'issued', "
                "0, :now FROM generate_series(1, :n) AS n"
            ),
            {"n": ORDERS, "now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO referral_codes (customer_id, code) "
                "SELECT n, 'REF-' || n FROM generate_series(1, :n) AS n"
            ),
            {"n": ORDERS},
        )
    codes = {"WELCOME10", "RW-5000", "REF-5001", *(f"SHOP{n}" for n in range(200))}
    store = session_factory(fresh)
    with store() as session:
        assert _usable_codes(session, codes) == {"RW-5000"}
        assert _referrers(session, codes) == {("REF-5001", ""): 5001}

    # run by the driver (``driver_statements``), built once with their codes as a parameter
    for statement, index in [
        (_PG_CODES, "ix_redemptions_upper_code"),
        (_PG_REFERRERS, "ix_referral_codes_upper_code"),
    ]:
        sql, literals = _compiled(statement, fresh.dialect)
        nodes = _plan_nodes(fresh, sql, {**literals, "codes": array_literal(sorted(codes))})
        scanned = {n.get("Index Name") or n["Node Type"] for n in nodes if "Scan" in n["Node Type"]}
        assert "Seq Scan" not in scanned, statement
        assert index in scanned, statement


def test_a_batch_s_ledger_lookups_are_not_compiled_as_the_ledger_grows(fresh, store_engine):
    """PostgreSQL compiles a statement (JIT) when its estimated cost passes
    ``jit_above_cost``, again at every run. Without statistics a batch's lookups by order are
    estimated to cost more as the ledger grows, and passed it in a long drain: compiled, each
    took several times as long. The store's connections never compile; a plain connection
    with the server's defaults shows the same lookup would have been."""
    with fresh.connect() as conn:
        if not conn.scalar(text("SELECT pg_jit_available()")):  # also false with jit = off
            pytest.skip("this PostgreSQL server does not compile statements (no JIT)")
        threshold = float(conn.scalar(text("SELECT current_setting('jit_above_cost')")))
    _fill(fresh)
    with fresh.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO loyalty_ledger (customer_id, order_id, kind, points, cause) "
                "SELECT n % :orders + 1, n % :orders + 1, 'award', 10, 'award:' || n "
                "FROM generate_series(1, :n) AS n"
            ),
            {"orders": ORDERS, "n": LEDGER_ROWS},
        )
    batch = {"order_ids": array_literal(range(5_000, 6_000))}  # a batch of 1,000 orders
    for read in (_PG_EARNED, _PG_HELD_OF_ORDERS):
        statement, literals = _compiled(read, fresh.dialect)
        server_default = _plan(fresh, statement, {**literals, **batch})
        assert server_default["Plan"]["Total Cost"] > threshold, statement
        assert "JIT" in server_default, statement
        assert "JIT" not in _plan(store_engine, statement, {**literals, **batch}), statement
