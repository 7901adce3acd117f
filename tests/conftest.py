"""Fixtures: a fresh, migrated database per test on SQLite and on a real PostgreSQL server.

`database_url` is parametrised over both backends; tests that take it (or `session`) run twice.
`sqlite_url` is for tests that only need one real database (AppTest pages, CLI).
The PostgreSQL server is never skipped: if it cannot start, the tests that need it error.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest
from sqlmodel import Session

from db.engine import build_engine, get_engine, reset_engine
from db.migrate import upgrade
from tests.pgserver import PgServer

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    server = PgServer().start()
    # Migrate once into a template; each test clones it (CREATE DATABASE ... TEMPLATE) in ~50 ms.
    server.create_database("coachloop_template")
    engine = build_engine(server.url("coachloop_template"))
    upgrade(engine)
    engine.dispose()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = build_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def _use(url: str, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    reset_engine()


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template, monkeypatch) -> str:
    path = tmp_path / "coachloop.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    _use(url, monkeypatch)
    yield url
    reset_engine()


@pytest.fixture
def postgres_url(request, monkeypatch) -> str:
    server: PgServer = request.getfixturevalue("pg_server")
    name = f"t{os.getpid()}_{next(_counter)}"
    url = server.create_database(name, template="coachloop_template")
    _use(url, monkeypatch)
    yield url
    reset_engine()
    server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str:
    """A fresh migrated database on each backend; DATABASE_URL points at it."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def session(database_url):
    with Session(get_engine(), expire_on_commit=False) as s:
        yield s


@pytest.fixture
def sqlite_session(sqlite_url):
    with Session(get_engine(), expire_on_commit=False) as s:
        yield s
