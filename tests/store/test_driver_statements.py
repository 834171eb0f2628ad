"""Statements run by psycopg itself (PostgreSQL): literal values kept, values given plainly,
errors as SQLAlchemy raises them."""

from datetime import datetime

import psycopg
import pytest
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError

from postpurchase.store.database import cached_key_checks, transaction
from postpurchase.store.driver_statements import fetch_all, orm_typed
from postpurchase.store.models import ConsentState, Customer, LedgerKind

_RENAME = (
    update(Customer)
    .where(Customer.external_id == bindparam("old"))
    .values(external_id=bindparam("new"), email=None)
    .returning(Customer.id, Customer.email)
)
_NAMED = select(Customer.external_id).where(Customer.external_id == bindparam("ref"))


@pytest.fixture
def postgres(engine, store):
    if engine.dialect.name != "postgresql":
        pytest.skip("statements run by the driver are PostgreSQL's")
    with transaction(store) as session:
        for ref in ("7", "8"):
            session.add(Customer(source="shopify", external_id=ref, email=f"{ref}@example.com"))
    return engine


def test_literal_values_are_kept_and_given_ones_sent_plain(postgres):
    with postgres.begin() as conn:
        ((_, email),) = fetch_all(conn, _RENAME, {"old": "7", "new": "9"})
        # An enum is sent as the value the column stores.
        ((kind,),) = fetch_all(conn, select(bindparam("kind")), {"kind": LedgerKind.REDEMPTION})
        assert fetch_all(conn, _NAMED, {"ref": "9"}) == [("9",)]
    assert email is None
    assert kind == LedgerKind.REDEMPTION.value


def test_a_parameter_left_out_is_an_error_not_a_null(postgres):
    with postgres.begin() as conn, pytest.raises((StatementError, psycopg.ProgrammingError)):
        fetch_all(conn, _NAMED, {})


def test_a_unique_key_taken_is_sqlalchemys_integrity_error_and_the_connection_recovers(postgres):
    with pytest.raises(IntegrityError), postgres.begin() as conn:
        fetch_all(conn, _RENAME, {"old": "7", "new": "8"})
    with postgres.begin() as conn:
        assert fetch_all(conn, _NAMED, {"ref": "7"}) == [("7",)]


def test_a_naive_time_and_python_side_defaults_are_refused(postgres):
    with postgres.begin() as conn, pytest.raises(ValueError, match="naive"):
        fetch_all(conn, select(bindparam("at")), {"at": datetime(2026, 1, 1)})
    with postgres.begin() as conn, pytest.raises(ValueError, match="Python-side"):
        fetch_all(conn, insert(Customer).values(source="shopify", external_id="10"), {})


def test_inside_cached_key_checks_nothing_is_prepared(postgres, store):
    """A batch's statements run by the driver get a plan at each run, as SQLAlchemy's do
    there: a prepared one could keep a generic plan made for the tables as they were."""
    prepared = "SELECT count(*) FROM pg_prepared_statements"
    with transaction(store) as session:
        with cached_key_checks(session):
            for _ in range(10):
                assert fetch_all(session.connection(), _NAMED, {"ref": "7"}) == [("7",)]
            assert session.execute(text(prepared)).scalar_one() == 0
        fetch_all(session.connection(), _NAMED, {"ref": "7"})
        assert session.execute(text(prepared)).scalar_one() == 1


def test_enum_columns_are_typed_as_the_orm_types_them(postgres, store):
    names = ("external_id", "email_marketing_consent_state", "sms_consent_state")
    typed = orm_typed(Customer, names)
    statement = select(*(Customer.__table__.c[n] for n in names)).where(
        Customer.external_id == bindparam("ref")
    )
    with transaction(store) as session:
        session.execute(
            update(Customer)
            .where(Customer.external_id == "7")
            .values(email_marketing_consent_state=ConsentState.GRANTED)
        )
        (row,) = fetch_all(session.connection(), statement, {"ref": "7"})
        stored = session.execute(statement, {"ref": "7"}).one()
    assert row[1] == "granted"  # psycopg reads an enum as its text
    values = typed(row)
    assert values == list(stored)
    assert [type(v) for v in values] == [type(v) for v in stored]
    assert values[1] is ConsentState.GRANTED


def test_a_value_that_is_no_members_is_refused_as_the_enum_refuses_it():
    typed = orm_typed(Customer, ("id", "email_marketing_consent_state"))
    assert typed((7, None)) == [7, None]
    with pytest.raises(ValueError, match="'maybe' is not a valid ConsentState"):
        typed((7, "maybe"))
