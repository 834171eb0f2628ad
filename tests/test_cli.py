"""The command line: what a user sees, including when something is wrong."""

import socket

import pytest
from click.testing import CliRunner

from postpurchase.cli import main


@pytest.fixture
def cli():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


def test_db_upgrade_creates_then_reports_the_schema(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", f"sqlite:///{tmp_path}/shop.db")
    first = cli("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert "migrated from empty to revision" in first.output
    second = cli("db", "upgrade")
    assert "already at revision" in second.output
    status = cli("db", "status")
    assert "inbox_events: 0" in status.output


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_postgres_is_one_line_naming_the_setting(cli, monkeypatch):
    port = _closed_port()
    monkeypatch.setenv(
        "POSTPURCHASE_DATABASE_URL", f"postgresql://shop:s3cret@127.0.0.1:{port}/postpurchase"
    )
    monkeypatch.setenv("POSTPURCHASE_DATABASE_CONNECT_TIMEOUT", "0.5")
    result = cli("db", "upgrade")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: POSTPURCHASE_DATABASE_URL: cannot reach")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.output


def test_unparseable_url_is_one_line(cli, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", "not a url")
    result = cli("db", "upgrade")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: POSTPURCHASE_DATABASE_URL: cannot parse 'not a url'; expected e.g. "
        "postgresql://user:password@host:5432/dbname or sqlite:////path/to/file.db"
    ]


def test_debug_shows_the_traceback(cli, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", "not a url")
    result = CliRunner().invoke(main, ["--debug", "db", "upgrade"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
