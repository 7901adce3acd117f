"""Shared set-up for the import, rubric and library tests: the seeded rubric and the users the
files in tests/data name (coaches mrivera "Maria Rivera" and jchen "James Chen")."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from coaching import importer
from db.models import User
from tests import factories

DATA = Path(__file__).resolve().parent / "data"


def people(session: Session) -> dict[str, User]:
    """Seeded rubric + library, an admin, two coaches named as in the test files, a leader."""
    factories.rubric(session)
    return {
        "admin": factories.user(session, "admin", username="admin1", name="Ada Admin"),
        "mrivera": factories.user(session, "coach", username="mrivera", name="Maria Rivera"),
        "jchen": factories.user(session, "coach", username="jchen", name="James Chen"),
        "leader": factories.user(session, "leader", username="lead1", name="Lee Leader"),
    }


def import_file(session: Session, admin: User, name: str, kind: str, **kw) -> importer.ImportResult:
    """Dry-run then apply a file from tests/data (the plan must be clean)."""
    plan = importer.plan_file(session=session, user=admin, source=DATA / name, filename=name, kind=kind, **kw)
    assert plan.ok, plan.problems
    return importer.apply_import(session=session, user=admin, plan=plan)
