"""Start-up work done once per process: migrate, optionally seed the demo, and prepare first-run setup."""

from __future__ import annotations

import logging
import os

import pydantic
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlmodel import Session

from coaching.errors import CoachloopError, ConfigError, DatabaseUnavailable
from coaching.settings import get_settings
from db import get_session
from db.migrate import describe_db_error, upgrade

log = logging.getLogger("coachloop")

# libpq (and psycopg's own connect loop) read PGCONNECT_TIMEOUT when the URL sets no
# connect_timeout. Without it an unreachable host blocks a page for over two minutes before any
# message appears; five seconds is plenty for a healthy server. A URL that sets its own wins.
os.environ.setdefault("PGCONNECT_TIMEOUT", "5")


def _check_writable(session: Session) -> None:
    # A read-only SQLite file (or a read-only PostgreSQL replica) opens and migrates fine when it is
    # already at head, then fails on the first save. Probe one no-op write now so the page says so.
    session.execute(text("UPDATE alembic_version SET version_num = version_num"))
    session.rollback()


def boot() -> None:
    """Migrate the database; load the demo when COACHLOOP_DEMO=1 and the database is empty;
    on an install with no users, print a one-time setup code to the server log.

    Raises DatabaseUnavailable (a database that cannot be reached, opened or written, with a message
    a person can act on) or ConfigError (unusable settings); never a raw driver error."""
    try:
        settings = get_settings()
    except pydantic.ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise ConfigError(f"The configuration is not usable: {problems}") from None
    try:
        upgrade()
        with get_session() as session:
            _check_writable(session)
            if settings.demo:
                from seeds.demo import seed_demo_if_empty

                seed_demo_if_empty(session=session)
            from coaching import setup

            code = setup.ensure_setup_code(session=session)
    except (OperationalError, DatabaseError) as exc:
        log.error("Database unavailable at start-up: %s", exc)
        raise DatabaseUnavailable(describe_db_error(exc)) from exc
    if code:
        log.warning(
            "Coachloop has no users yet. One-time setup code: %s  (enter it on the sign-in page "
            "to create the first admin, or run `python -m coaching create-user --role admin`)",
            code,
        )


__all__ = ["boot", "CoachloopError", "DatabaseUnavailable"]
