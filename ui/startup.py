"""Start-up work done once per process: migrate, optionally seed the demo, and prepare first-run setup."""

from __future__ import annotations

import logging

from coaching.errors import CoachloopError
from coaching.settings import get_settings
from db import get_session
from db.migrate import upgrade

log = logging.getLogger("coachloop")


def boot() -> None:
    """Migrate the database; load the demo when COACHLOOP_DEMO=1 and the database is empty;
    on an install with no users, print a one-time setup code to the server log."""
    upgrade()
    with get_session() as session:
        if get_settings().demo:
            from seeds.demo import seed_demo_if_empty

            seed_demo_if_empty(session=session)
        from coaching import setup

        code = setup.ensure_setup_code(session=session)
        if code:
            log.warning(
                "Coachloop has no users yet. One-time setup code: %s  (enter it on the sign-in page "
                "to create the first admin, or run `python -m coaching create-user --role admin`)",
                code,
            )


__all__ = ["boot", "CoachloopError"]
