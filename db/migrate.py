"""Apply Alembic migrations (at start-up and from `python -m coaching init-db`)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError

from coaching.errors import DatabaseUnavailable
from db.engine import get_engine

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ADVISORY_LOCK_ID = 4_242_017  # any constant shared by every Coachloop process


def _config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Migrate the database to `revision`; on PostgreSQL under an advisory lock so that several
    app processes starting together do not migrate concurrently."""
    engine = engine or get_engine()
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_LOCK_ID})
                conn.commit()
                try:
                    command.upgrade(_config(conn), revision)
                    conn.commit()
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK_ID})
                    conn.commit()
            else:
                command.upgrade(_config(conn), revision)
                conn.commit()
    except (OperationalError, DatabaseError) as exc:
        raise DatabaseUnavailable(describe_db_error(exc)) from exc


def downgrade(engine: Engine | None = None, revision: str = "base") -> None:
    """Migrate the database down to `revision` (tests and manual rollbacks)."""
    engine = engine or get_engine()
    with engine.connect() as conn:
        command.downgrade(_config(conn), revision)
        conn.commit()


def describe_db_error(exc: Exception) -> str:
    """One line a person can act on, for a database that cannot be reached, opened or written."""
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    msg = text_.splitlines()[0].strip() if text_ else type(exc).__name__
    low = text_.lower()
    if "readonly" in low or "read-only" in low or "read only" in low:
        return f"The database is read-only; check the file's permissions (or the server's settings). ({msg})"
    if "not a database" in low or "malformed" in low or "file is encrypted" in low:
        return f"The database file is damaged or is not a SQLite database; restore it from a backup. ({msg})"
    if "unable to open" in low:
        return f"The database file cannot be opened; check the path and folder permissions. ({msg})"
    if "password authentication failed" in low or ("role" in low and "does not exist" in low):
        return f"The database refused the user name or password in DATABASE_URL. ({msg})"
    if "database" in low and "does not exist" in low:
        return f"The database named in DATABASE_URL does not exist; create it first. ({msg})"
    if any(
        k in low
        for k in ("connection refused", "could not connect", "timeout expired", "timed out", "translate host")
    ):
        return (
            "Cannot reach the database server; check that it is running and that DATABASE_URL "
            f"names the right host and port. ({msg})"
        )
    return f"Cannot use the database: {msg}"
