"""Start-up and health: a database that cannot be reached, opened or written gives a clear message on
the page (never a traceback), and the app recovers by itself once the database is back."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import streamlit as st
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from coaching.errors import DatabaseUnavailable
from db.engine import build_engine, reset_engine
from db.migrate import describe_db_error, upgrade
from tests import factories
from tests.pgserver import PgServer, _bin, _free_port
from ui.startup import boot

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _run_app(url: str, monkeypatch) -> AppTest:
    """Run app.py once against `url`, as a fresh process would (no cached boot, no cached engine)."""
    monkeypatch.setenv("DATABASE_URL", url)
    reset_engine()
    # st.cache_resource is process-wide: another test's successful boot must not hide this one.
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    return at


def _shows_login_form(at: AppTest) -> bool:
    return [t.label for t in at.text_input][:2] == ["Username", "Password"]


def _error_text(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


@pytest.fixture
def own_pg_server():
    """A PostgreSQL cluster this test may stop and start again on the same port."""
    server = PgServer().start()
    yield server
    server.stop()


def _pg_ctl(server: PgServer, action: str) -> None:
    args = [_bin("pg_ctl"), "-D", str(server.datadir), "-w", "-t", "60"]
    if action == "start":
        args += ["-o", f"-p {server.port} -h 127.0.0.1 -k {server.root} -c fsync=off"]
        args += ["-l", str(server.root / "log")]
    else:
        args += ["-m", "fast"]
    server._run(*args, action)


def test_an_unreachable_postgresql_shows_a_clear_message_and_the_app_recovers_when_it_returns(
    own_pg_server, monkeypatch
):
    server = own_pg_server
    server.create_database("coachloop")
    url = server.url("coachloop")
    _pg_ctl(server, "stop")

    down = _run_app(url, monkeypatch)
    assert not down.exception
    message = _error_text(down)
    assert "database" in message.lower()
    assert "Cannot reach the database server" in message
    assert "Traceback" not in message
    assert not _shows_login_form(down)

    _pg_ctl(server, "start")
    # The same process, the next rerun: the failed boot was not cached, so it migrates now.
    reset_engine()
    down.run()
    assert not down.exception
    assert not down.error, _error_text(down)
    assert _shows_login_form(down)


def test_a_postgresql_url_with_nothing_listening_fails_at_once_with_a_message(monkeypatch):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/coachloop"
    at = _run_app(url, monkeypatch)
    assert not at.exception
    assert "Cannot reach the database server" in _error_text(at)


def test_a_postgresql_server_that_never_answers_fails_within_the_connect_timeout(monkeypatch):
    # A socket that listens but never accepts: the TCP handshake completes and the client waits for
    # an answer that never comes. Without a connect timeout this blocks for over two minutes.
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(16)
        port = blackhole.getsockname()[1]
        monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{port}/coachloop")
        reset_engine()
        assert os.environ.get("PGCONNECT_TIMEOUT") == "5"  # set by ui.startup at import
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="Cannot reach the database server"):
            boot()
        assert time.monotonic() - started < 20
    reset_engine()


def test_a_corrupt_sqlite_file_shows_that_the_file_is_damaged(tmp_path, monkeypatch):
    path = tmp_path / "coachloop.db"
    path.write_bytes(os.urandom(64 * 1024))
    at = _run_app(f"sqlite:///{path}", monkeypatch)
    assert not at.exception
    message = _error_text(at)
    assert "Coachloop cannot open its database" in message
    assert "damaged or is not a SQLite database" in message
    assert not _shows_login_form(at)


def test_a_sqlite_file_truncated_mid_page_shows_a_clear_message(tmp_path, sqlite_template, monkeypatch):
    path = tmp_path / "coachloop.db"
    data = sqlite_template.read_bytes()
    path.write_bytes(data[:100] + os.urandom(len(data) - 100))  # valid header, garbage pages
    at = _run_app(f"sqlite:///{path}", monkeypatch)
    assert not at.exception
    assert "damaged" in _error_text(at) or "Cannot use the database" in _error_text(at)


def _make_read_only(path: Path) -> str:
    """Make the file read-only for this process and return the URL to open it with."""
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    if os.geteuid() != 0:
        return f"sqlite:///{path}"
    # root ignores permission bits; the immutable flag binds root too (where the filesystem has it).
    if (
        shutil.which("chattr")
        and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    ):
        return f"sqlite:///{path}"
    return f"sqlite:///file:{path}?mode=ro&uri=true"  # the same thing as SQLite sees it


@pytest.mark.parametrize("with_users", [False, True], ids=["empty", "with-users"])
def test_a_read_only_sqlite_file_shows_that_it_is_read_only(
    tmp_path, sqlite_template, monkeypatch, with_users
):
    path = tmp_path / "coachloop.db"
    shutil.copy(sqlite_template, path)
    if with_users:
        engine = build_engine(f"sqlite:///{path}")
        with Session(engine) as s:
            factories.rubric(s)
            factories.user(s, "admin")
        engine.dispose()
    url = _make_read_only(path)
    try:
        at = _run_app(url, monkeypatch)
        assert not at.exception
        message = _error_text(at)
        assert "Coachloop cannot open its database" in message
        assert "read-only" in message
        assert not _shows_login_form(at)
    finally:
        reset_engine()
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o644)


def test_a_fresh_sqlite_path_is_created_migrated_and_shows_the_login_form(tmp_path, monkeypatch):
    at = _run_app(f"sqlite:///{tmp_path / 'new' / 'coachloop.db'}", monkeypatch)
    assert not at.exception
    assert not at.error
    assert (tmp_path / "new" / "coachloop.db").exists()


def test_an_unsupported_database_url_says_what_is_wrong(monkeypatch):
    at = _run_app("mysql://root@127.0.0.1/coachloop", monkeypatch)
    assert not at.exception
    assert "unsupported database" in _error_text(at)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("attempt to write a readonly database", "read-only"),
        ("file is not a database", "damaged"),
        ("database disk image is malformed", "damaged"),
        ("unable to open database file", "cannot be opened"),
        (
            'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused',
            "Cannot reach",
        ),
        ('FATAL:  database "nope" does not exist', "does not exist; create it"),
        ('FATAL:  password authentication failed for user "x"', "user name or password"),
        ("something else entirely", "Cannot use the database"),
    ],
)
def test_database_errors_are_described_in_words_a_person_can_act_on(raw, expected):
    assert expected in describe_db_error(Exception(raw))


def test_migrating_an_unreachable_database_raises_database_unavailable_not_a_driver_error():
    engine = build_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/x")
    with pytest.raises(DatabaseUnavailable):
        upgrade(engine)
    engine.dispose()
