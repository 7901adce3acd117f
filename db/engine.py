"""One lazily created engine per database URL, and the one session context manager."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session, create_engine

from coaching.errors import ConfigError
from coaching.settings import get_settings

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" listener own transactions (see _begin_immediate).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _begin_immediate(conn) -> None:
    # A deferred transaction that upgrades from read to write fails at once with "database is
    # locked" when another writer holds the lock; BEGIN IMMEDIATE makes writers queue instead.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def build_engine(url: str) -> Engine:
    """Create an engine for `url` with Coachloop's connection settings."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise ConfigError(f"DATABASE_URL names an unsupported database: {parsed.get_backend_name()!r}")


@functools.cache
def get_engine() -> Engine:
    """The process-wide engine for the configured DATABASE_URL (created on first use)."""
    return build_engine(get_settings().resolved_database_url)


def reset_engine() -> None:
    """Forget the cached settings and engine (tests switch DATABASE_URL between databases)."""
    try:
        if get_engine.cache_info().currsize:
            get_engine().dispose()
    finally:
        get_engine.cache_clear()
        get_settings.cache_clear()


@contextmanager
def get_session() -> Iterator[Session]:
    """A session on the process-wide engine; the function that owns a write commits it."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session
