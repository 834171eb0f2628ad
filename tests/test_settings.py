from pathlib import Path

import pytest

from postpurchase.exceptions import ConfigError
from postpurchase.settings import load_settings, parse_database_url


def test_default_database_is_sqlite_under_var_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTPURCHASE_VAR_DIR", str(tmp_path / "var"))
    url = load_settings().sqlalchemy_url
    assert url.get_backend_name() == "sqlite"
    assert Path(url.database) == tmp_path / "var" / "postpurchase.db"


def test_postgresql_urls_use_psycopg_3():
    url = parse_database_url("postgresql://shop:s3cret@db.internal:5432/postpurchase")
    assert url.drivername == "postgresql+psycopg"
    assert url.database == "postpurchase"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("postgres ql::/x", "cannot parse"),
        ("mysql://root@127.0.0.1/shop", "unsupported database 'mysql'"),
        ("postgresql://127.0.0.1:5432", "names no database"),
    ],
)
def test_bad_database_urls_name_the_setting(monkeypatch, raw, problem):
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", raw)
    with pytest.raises(ConfigError, match="POSTPURCHASE_DATABASE_URL") as caught:
        load_settings()
    assert problem in str(caught.value)


def test_bad_numbers_name_the_variable(monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_CLAIM_LEASE_SECONDS", "-5")
    with pytest.raises(ConfigError, match="POSTPURCHASE_CLAIM_LEASE_SECONDS"):
        load_settings()


def test_an_empty_variable_means_not_set(monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_SIGNING_SECRET", "")
    monkeypatch.setenv("POSTPURCHASE_CLAIM_LEASE_SECONDS", "")
    settings = load_settings()
    assert settings.signing_secret is None
    assert settings.claim_lease_seconds == 300
