"""The command line: what a user sees, including when something is wrong."""

import socket

import pytest
from click.testing import CliRunner

from postpurchase.cli import main
from postpurchase.settings import parse_database_url
from postpurchase.store import schema
from postpurchase.store.database import make_engine


@pytest.fixture
def cli():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


def test_db_upgrade_creates_then_reports_the_schema(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", f"sqlite:///{tmp_path}/shop.db")
    newest = schema.head_revision()
    first = cli("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert f"migrated from empty to revision {newest}" in first.output
    second = cli("db", "upgrade")
    assert "already at revision" in second.output
    status = cli("db", "status")
    assert f"at revision {newest} (newest)" in status.output
    assert "inbox_events: 0" in status.output


def test_commands_on_an_unmigrated_database_say_to_upgrade(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("POSTPURCHASE_DATABASE_URL", f"sqlite:///{tmp_path}/shop.db")
    empty = cli("db", "status")
    older_engine = make_engine(parse_database_url(f"sqlite:///{tmp_path}/shop.db"))
    schema.upgrade(older_engine, "0003")
    older_engine.dispose()
    older = cli("loyalty", "balance", "ada@example.com")

    assert empty.exit_code == older.exit_code == 2
    assert empty.stderr.strip().endswith(
        "has no postpurchase tables, this version needs "
        f"{schema.head_revision()}: run `postpurchase db upgrade` first"
    )
    assert "is at revision 0003, this version needs" in older.stderr
    assert "Traceback" not in empty.output + older.output


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
