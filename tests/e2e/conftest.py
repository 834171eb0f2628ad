from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from project_paths import POSTGRES_URL_ENV
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.e2e.cluster import AirflowCluster


def _fresh_database(admin_url: str, name: str) -> str:
    """Create (or re-create) database ``name`` next to the test database; return its URL."""
    url = make_url(admin_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Start the distributed setup with extra settings; every cluster is stopped at the end."""
    admin_url = os.environ.get(POSTGRES_URL_ENV)
    if not admin_url:
        pytest.skip(f"the distributed setup runs on PostgreSQL: set {POSTGRES_URL_ENV}")
    base = make_url(admin_url).database
    started: list[AirflowCluster] = []

    def start(env: dict[str, str]) -> AirflowCluster:
        n = len(started) + 1
        cluster = AirflowCluster(
            tmp_path_factory.mktemp("cluster"),
            airflow_db=_fresh_database(admin_url, f"{base}_e2e_airflow_{n}"),
            engine_db=_fresh_database(admin_url, f"{base}_e2e_engine_{n}"),
            redis_db=12 + n,
            env=env,
        )
        started.append(cluster)
        cluster.migrate()
        cluster.start_all()
        cluster.wait_ready()
        return cluster

    yield start
    for cluster in started:
        cluster.stop()
