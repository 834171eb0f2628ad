"""Engines and sessions for the engine's own database (SQLite by default, PostgreSQL in production).

SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``: writers queue on
the busy timeout instead of failing with "database is locked" when a deferred transaction tries
to upgrade its read lock. That makes SQLite single-writer, which is what the embedded default is.
"""

from __future__ import annotations

import select
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from postpurchase.exceptions import DatabaseUnavailable
from postpurchase.settings import Settings
from postpurchase.store.driver_statements import fetch_all, rows_changed

SessionFactory = sessionmaker[Session]

_READ_ONLY = "postpurchase_read_only"  # execution option: begin a SQLite read, not a write


def make_engine(
    url: URL, *, busy_timeout_ms: int = 30_000, connect_timeout: float = 10.0
) -> Engine:
    """Create an engine for ``url`` with the per-backend setup the store relies on."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms)
    connect_args = {
        "connect_timeout": max(1, int(connect_timeout)),
        # Statements the driver prepares are planned for their parameters and the tables
        # as they are at each run. A generic plan is made once and kept: made while a new
        # table was a few pages long (a scan of it was then cheapest), it went on scanning
        # the whole table, every batch, as the table grew. (Bulk writers lift this for
        # their foreign key checks: ``cached_key_checks``.)
        # Times are read in UTC whatever the server's zone: psycopg gives a ``timestamptz``
        # its zone at C speed only when the session's is UTC by that name (a server in
        # ``Etc/UTC``, or in a shop's zone, cost a zone lookup and a conversion per value).
        # No JIT compilation: most of our statements read a batch's rows, too few for
        # compiled code to win back its compiling, which is done again at every run.
        # PostgreSQL compiles when the estimated cost passes a threshold, and on tables
        # without statistics the estimate grows with the table: a drain's two ledger
        # lookups by order passed it some 600,000 events into a backlog, and compiled they
        # took four times as long (5.6 ms instead of 1.4 for 250 orders, 250,000 rows).
        # The outcome refresh, which reads whole tables, took the same CPU either way.
        "options": "-c plan_cache_mode=force_custom_plan -c TimeZone=UTC -c jit=off",
    }
    engine = create_engine(
        url,
        hide_parameters=True,  # errors and logs never show customers' data (see _sqlite_engine)
        # At most 15 connections per process, as SQLAlchemy's default (5 kept + 10 overflow)
        # allows, but all 15 kept once opened: the overflow ones were closed as soon as they
        # went back, so a web worker serving 15 requests at once opened (and PostgreSQL
        # forked a backend for) a connection for nearly every transaction. A process opens
        # only the connections it uses at once: a one-thread task keeps one.
        pool_size=15,
        max_overflow=0,
        connect_args=connect_args,
    )
    event.listen(engine, "checkout", _alive_or_replaced)
    _CONNECT_ARGS[engine] = connect_args
    return engine


# What make_engine gave each PostgreSQL engine's driver beyond its URL. SQLAlchemy keeps them
# inside its pool's connect function, out of reach.
_CONNECT_ARGS: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()


def driver_connect_params(engine: Engine) -> dict[str, Any]:
    """The keyword arguments the pool of ``engine`` (PostgreSQL) hands ``psycopg.connect``:
    for a connection of one's own, set up as the pooled ones are."""
    _args, params = engine.dialect.create_connect_args(engine.url)
    return {**params, **_CONNECT_ARGS.get(engine, {})}


def _alive_or_replaced(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection checked before use, as ``pool_pre_ping`` would, without its round
    trip (two of a storefront redemption's seven): between transactions the server sends
    nothing, unless it is closing the connection (a restart, a terminated backend). Only a
    connection with something to read is pinged; a failed ping has the pool open a new one."""
    if dbapi_conn.closed:
        raise DisconnectionError("the connection is closed")
    if not has_input(dbapi_conn):
        return
    try:
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_conn.rollback()
    except Exception as exc:
        raise DisconnectionError(f"the server closed the connection: {exc}") from exc


def has_input(driver_connection: Any) -> bool:
    """Whether the server sent anything to an idle psycopg connection (sync or async): it
    sends nothing between statements unless it is closing the connection. No round trip."""
    readable = select.poll()
    readable.register(driver_connection.fileno(), select.POLLIN)
    return bool(readable.poll(0))


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failed statement's error (logged, kept as a row's last_error) would
    # otherwise carry the values of every row in the batch: emails, names, addresses.
    engine = create_engine(
        url, hide_parameters=True, connect_args={"timeout": busy_timeout_ms / 1000}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see the module doc).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")  # a WAL snapshot: takes no lock, blocks no writer
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def engine_from_settings(settings: Settings) -> Engine:
    """A new engine for the configured database (commands that run once; see open_store)."""
    return make_engine(
        settings.sqlalchemy_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        connect_timeout=settings.database_connect_timeout,
    )


def session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)


def engine_of(factory: SessionFactory) -> Engine:
    """The engine ``factory`` binds its sessions to, for work that needs no ORM session."""
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError(f"the session factory is bound to {bind!r}, not an engine")
    return bind


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def reading(factory: SessionFactory) -> Iterator[Session]:
    """A session for reads only, seeing one consistent snapshot.

    On SQLite it does not take the write lock that ``transaction`` takes at once, so a long
    read does not hold up other processes' writes. Writing in it is still possible but may
    then have to wait for that lock, or fail if the snapshot became stale.
    """
    with factory() as session, session.begin():
        session.connection(execution_options={_READ_ONLY: True})
        yield session


@contextmanager
def cached_key_checks(session: Session) -> Iterator[None]:
    """On PostgreSQL, inside: foreign key checks keep one plan per connection, our statements
    are still planned at each run. For writers of many rows at a time (a drain batch).

    PostgreSQL checks each row a statement inserts against the table it refers to, with a
    query of its own that it plans once and keeps. The engine's ``force_custom_plan`` had it
    planned again for every row: a third of the database's time in a drain. Inside, the
    setting is PostgreSQL's own (a generic plan once it is no dearer: a lookup of the
    referenced key through its index, even when made on empty tables without statistics),
    and the driver prepares no statement meanwhile, so none of ours gets a generic plan.
    Outside, prepared statements keep saving each run's parsing (a few statements per
    webhook or message).

    The kept plans are made anew at each entry, for the tables as they are then: a plan made
    from statistics of nearly empty tables (autovacuum's first ANALYZE of new tables, when
    it runs no other) scanned the whole referenced table for each row, more than doubling
    the database's CPU in a drain, as long as the connection lived. Planning the checks
    once per batch costs a few plans per thousand events.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    connection = session.connection()
    with unprepared(connection):
        # run by psycopg (``driver_statements``): three times per batch
        mode = plans_kept(connection, session_wide=False)
        yield
        # (after an error the caller rolls back, which puts the setting back)
        plans_back(connection, mode, session_wide=False)


@contextmanager
def unprepared(connection: Connection) -> Iterator[None]:
    """Inside, psycopg prepares no statement on ``connection`` (PostgreSQL): each is planned
    at each run, none gets a plan kept while the connection keeps its plans (``plans_kept``).
    """
    driver = connection.connection.dbapi_connection
    assert driver is not None
    prepared = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        yield
    finally:
        driver.prepare_threshold = prepared


def plans_kept(connection: Connection, *, session_wide: bool) -> str:
    """On PostgreSQL: the plans ``connection`` kept dropped, and from now on those of
    prepared statements kept as PostgreSQL's own ``plan_cache_mode = auto`` keeps them (a
    generic plan once it is no dearer), until the transaction ends or, ``session_wide``,
    until ``plans_back``. Returns the mode before, for ``plans_back``."""
    rows_changed(connection, _FRESH_PLANS, {})
    [(mode, _)] = fetch_all(connection, _AUTO_PLANS, {"local": not session_wide})
    return str(mode)


def plans_back(connection: Connection, mode: str, *, session_wide: bool) -> None:
    """Put back the ``mode`` ``plans_kept`` returned, as widely as it was set."""
    fetch_all(connection, _PLANS_AS_BEFORE, {"mode": mode, "local": not session_wide})


_FRESH_PLANS = text("DISCARD PLANS")
# set_config's third argument, ``local``: for the transaction only, or else the session
_AUTO_PLANS = text(
    "SELECT current_setting('plan_cache_mode'), set_config('plan_cache_mode', 'auto', :local)"
)
_PLANS_AS_BEFORE = text("SELECT set_config('plan_cache_mode', :mode, :local)")


def wait_for_database(engine: Engine, *, timeout: float, setting: str) -> None:
    """Block until the database answers ``SELECT 1``; DatabaseUnavailable after ``timeout``.

    The error names ``setting`` and the URL without its password, and the driver's reason.
    """
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError as exc:
            if time.monotonic() + delay > deadline:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                shown = engine.url.render_as_string(hide_password=True)
                raise DatabaseUnavailable(
                    f"{setting}: cannot reach the database at {shown}: {reason}"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


_OPEN_STORES: OrderedDict[tuple[str, int, float], SessionFactory] = OrderedDict()
_OPEN_STORES_LOCK = threading.Lock()
_OPEN_STORES_KEPT = 8


def _factory_for(url: str, busy_timeout_ms: int, connect_timeout: float) -> SessionFactory:
    key = (url, busy_timeout_ms, connect_timeout)
    with _OPEN_STORES_LOCK:
        factory = _OPEN_STORES.get(key)
        if factory is not None:
            _OPEN_STORES.move_to_end(key)
            return factory
        engine = make_engine(
            make_url(url), busy_timeout_ms=busy_timeout_ms, connect_timeout=connect_timeout
        )
        factory = _OPEN_STORES[key] = session_factory(engine)
        if len(_OPEN_STORES) > _OPEN_STORES_KEPT:
            # The least recently used store's pooled connections are closed now, not left to
            # the garbage collector (which would drop them unclosed, at some random moment).
            _, evicted = _OPEN_STORES.popitem(last=False)
            engine_of(evicted).dispose()
        return factory


def open_store(settings: Settings) -> SessionFactory:
    """The session factory for the configured database, one engine per process and URL.

    Task processes and web workers call this per unit of work; the engine and its pool are
    built once and reused.
    """
    return _factory_for(
        settings.sqlalchemy_url.render_as_string(hide_password=False),
        settings.sqlite_busy_timeout_ms,
        settings.database_connect_timeout,
    )
