"""A wave's commit as one statement (``wave_commit.release_and_mark``) writes what the same
commit in steps writes (``claims.release_each`` per group, then ``claims.mark_sending_many``),
row for row, and answers the same: rows held or not by the worker, in every status, each
kind of outcome, marks asked again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes.fixtures import add_customer, add_order, add_touchpoint
from sqlalchemy import select

from postpurchase.dispatch.outcomes import Outcome
from postpurchase.dispatch.sending import outcome_rows
from postpurchase.store.claims import mark_sending_many, release_each
from postpurchase.store.database import engine_of, transaction
from postpurchase.store.models import Channel, Touchpoint, TouchpointStatus
from postpurchase.store.wave_commit import release_and_mark

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
LEASE_UNTIL = NOW + timedelta(minutes=5)
S = TouchpointStatus

# Each row as it starts: its status and the worker holding it.
ROWS = [
    (S.CLAIMED, "w"),
    (S.SENDING, "w"),
    (S.UNKNOWN, "w"),
    (S.CLAIMED, "x"),
    (S.SENDING, "x"),
    (S.SENT, "w"),
    (S.CLAIMED, "w"),
    (S.SENDING, "w"),
    (S.CLAIMED, "w"),
    (S.UNKNOWN, "w"),
    (S.CLAIMED, "w"),
    (S.SENDING, "w"),
    (S.CLAIMED, "w"),
    (S.PLANNED, None),
]


def _commits(ids: list[int]) -> list[tuple[list[Outcome], list[int]]]:
    """Commits of the rows ``ids`` (in ``ROWS``' order): outcomes, then ids to mark."""
    at = NOW + timedelta(seconds=3)
    return [
        # one group and the marks, as a steady chunk commits
        (
            [Outcome.sent(ids[n], f"m-{n}", at + timedelta(seconds=n)) for n in (0, 1, 2, 3, 4)],
            [ids[6], ids[7], ids[3], ids[13], ids[5]],
        ),
        # every kind, answered or not, and marks asked again
        (
            [
                Outcome.sent(ids[7], "m-7", at),
                Outcome.failed(ids[8], "refused", answered=True),
                Outcome.failed(ids[9], "refused"),
                Outcome.skipped(ids[10], "smart sending"),
                Outcome.deferred(ids[11], NOW + timedelta(hours=8)),
                Outcome.retrying(ids[12], NOW + timedelta(minutes=10), "timeout"),
            ],
            [ids[6], ids[0], ids[9], ids[2]],
        ),
        # groups alone, and marks alone
        ([Outcome.unknown(ids[6], "no answer"), Outcome.skipped(ids[5], "late")], []),
        ([], [ids[n] for n in range(len(ROWS))]),
    ]


def _rows(store, count: int) -> list[int]:
    with transaction(store) as session:
        ids = []
        for status, worker in ROWS[:count]:
            customer = add_customer(session)
            order = add_order(session, customer)
            touchpoint = add_touchpoint(
                session,
                customer,
                order,
                "delivery_checkin",
                Channel.EMAIL,
                NOW,
                status=status,
                claimed_by=worker,
                lease_until=NOW + timedelta(minutes=1) if worker else None,
                attempts=1,
                reason="before",
            )
            ids.append(touchpoint.id)
        return ids


def _state(store, ids: list[int]) -> list[tuple[object, ...]]:
    own = ("id", "subject_key", "customer_id", "order_id", "created_at", "updated_at")
    columns = [c for c in Touchpoint.__table__.c if c.name not in own]
    with store() as session:
        found = {row[0]: row[1:] for row in session.execute(select(Touchpoint.id, *columns))}
    return [found[i] for i in ids]


def test_one_statement_writes_and_answers_as_the_steps_do(store):
    engine = engine_of(store)
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement commit is PostgreSQL's")
    at_once, in_steps = _rows(store, len(ROWS)), _rows(store, len(ROWS))
    position = {row_id: n for n, row_id in enumerate(at_once)}
    started = _state(store, at_once)
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        for (outcomes, mark), (outcomes_b, mark_b) in zip(
            _commits(at_once), _commits(in_steps), strict=True
        ):
            groups = outcome_rows(outcomes)
            counts, marked = release_and_mark(
                connection,
                [(rows, also_from) for _, rows, also_from in groups],
                mark,
                worker="w",
                lease_until=LEASE_UNTIL,
            )
            with transaction(store) as session:
                expected_counts = [
                    release_each(session, rows, worker="w", also_from=also_from)
                    for _, rows, also_from in outcome_rows(outcomes_b)
                ]
                expected = (
                    mark_sending_many(session, mark_b, worker="w", lease_until=LEASE_UNTIL)
                    if mark_b
                    else set()
                )
            assert counts == expected_counts
            assert {position[i] for i in marked} == {in_steps.index(i) for i in expected}
            assert _state(store, at_once) == _state(store, in_steps)
    assert _state(store, at_once) != started
