"""Shared fixtures: a clean engine database per test (SQLite, and PostgreSQL when configured)
and Airflow's metadata database, migrated once per test session in a throwaway AIRFLOW_HOME.

Set POSTPURCHASE_TEST_POSTGRES_URL to a database the tests may wipe (its public schema is
dropped and rebuilt at the start of the session) to run every store test on PostgreSQL too.
When it is set and PostgreSQL is unreachable, the run fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from project_paths import DAGS, POSTGRES_URL_ENV, ROOT

# Airflow reads its configuration when first imported: point it at a throwaway home before
# any test imports it, so no developer's Airflow is touched.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="postpurchase-airflow-"))
os.environ.update(
    AIRFLOW_HOME=str(_AIRFLOW_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
    NO_PROXY="127.0.0.1,localhost",
)
# Tests set the engine's settings themselves; a developer's own must not leak in.
for _name in [n for n in os.environ if n.startswith("POSTPURCHASE_") and n != POSTGRES_URL_ENV]:
    del os.environ[_name]

from sqlalchemy import Engine, text  # noqa: E402

from postpurchase.settings import parse_database_url  # noqa: E402
from postpurchase.store import schema  # noqa: E402
from postpurchase.store.database import SessionFactory, make_engine, session_factory  # noqa: E402
from postpurchase.store.models import Base  # noqa: E402

# The provider fakes, shop, renderer and dispatcher fixtures, for every folder that needs them.
pytest_plugins = ["fakes.fixtures"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(parse_database_url(f"sqlite:///{path}"))
    schema.upgrade(engine)
    engine.dispose()  # the last connection closing folds the WAL into the file: a copy is whole
    return path


@pytest.fixture(scope="session")
def _postgres_engine() -> Iterator[Engine]:
    raw = os.environ.get(POSTGRES_URL_ENV)
    if not raw:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    engine = make_engine(parse_database_url(raw), connect_timeout=5)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    except Exception as exc:  # unreachable or refused: fail loudly, never skip
        pytest.fail(f"{POSTGRES_URL_ENV} is set but PostgreSQL is unusable: {exc}", pytrace=False)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of a clean, migrated engine database, also set as POSTPURCHASE_DATABASE_URL.

    Tests using it run once on SQLite and once on PostgreSQL.
    """
    if request.param == "sqlite":
        path = tmp_path / "postpurchase.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        engine: Engine = request.getfixturevalue("_postgres_engine")
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", url)
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path / "var"))
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(parse_database_url(db_url))
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> SessionFactory:
    """A session factory on the clean test database."""
    return session_factory(engine)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's SQLite metadata database, migrated once per test session."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return _AIRFLOW_HOME / "airflow.db"


@pytest.fixture
def run_dag(airflow_db: Path, db_url: str) -> Callable[[str], object]:
    """Run a DAG from dags/ once with ``dag.test()`` against the test's engine database.

    Returns the finished DagRun; the test fails if the run did not succeed.
    """

    def run(dag_id: str) -> object:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(DAGS))
        assert not bag.import_errors, bag.import_errors
        dag_run = bag.get_dag(dag_id).test()
        assert dag_run.state == "success", f"{dag_id} ended {dag_run.state}"
        return dag_run

    return run
