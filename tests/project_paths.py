"""Where the project's folders are, and the setting that points the tests at PostgreSQL:
imported by conftest and by the tests that start Airflow processes or parse the DAG folder."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
POSTGRES_URL_ENV = "POSTPURCHASE_TEST_POSTGRES_URL"
