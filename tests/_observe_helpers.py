"""Shared set-up for the observe/assign/revisit/sustain tests: a school, a coach with a teacher,
an admin, another coach's teacher, and helpers that build drafts and count rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from coaching.observations import NewStep, ObservationDraft, record_observation
from db.models import (
    ActionStep,
    AuditLog,
    DomainScore,
    Observation,
    Revisit,
    School,
    StepEvent,
    Teacher,
    User,
)
from tests import factories

COUNTED = (Observation, DomainScore, Revisit, ActionStep, StepEvent, AuditLog)


@dataclass
class World:
    school: School
    coach: User
    other_coach: User
    admin: User
    leader: User
    teacher_login: User
    teacher: Teacher
    other_teacher: Teacher


def world(session: Session) -> World:
    factories.rubric(session)
    school = factories.school(session)
    coach = factories.user(session, "coach", name="Casey Coach", schools=[school])
    other_coach = factories.user(session, "coach", name="Olive Other", schools=[school])
    admin = factories.user(session, "admin", name="Ada Admin")
    leader = factories.user(session, "leader", name="Lee Leader", schools=[school])
    login = factories.user(session, "teacher", name="Tess Teacher")
    teacher = factories.teacher(session, school, coach=coach, name="Tess Teacher", login=login)
    other = factories.teacher(session, school, coach=other_coach, name="Oscar Elsewhere")
    return World(school, coach, other_coach, admin, leader, login, teacher, other)


# One fixed "now" per test run, so that two calls with the same argument give the same instant.
NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def draft(teacher_id: int, when: datetime, **kw) -> ObservationDraft:
    kw.setdefault("scores", {"CR": 2, "SB": 3})
    return ObservationDraft(
        teacher_id=teacher_id, block_code=kw.pop("block_code", "WG"), observed_at=when, **kw
    )


def assign(
    session: Session, by: User, teacher_id: int, when: datetime, *titles: str, **kw
) -> list[ActionStep]:
    """Save an observation that assigns custom steps with these titles; return the new steps."""
    obs = record_observation(
        session=session,
        draft=draft(teacher_id, when, new_steps=[NewStep(custom_text=t) for t in titles], **kw),
        by=by,
    )
    steps = list(
        session.exec(select(ActionStep).where(ActionStep.observation_id == obs.id).order_by(ActionStep.id))
    )
    session.commit()  # end the read transaction: on SQLite it would hold the write lock
    return steps


def revisit(session: Session, by: User, teacher_id: int, when: datetime, ratings: dict[int, str], **kw):
    return record_observation(session=session, draft=draft(teacher_id, when, revisits=ratings, **kw), by=by)


def counts(session: Session) -> dict[str, int]:
    return {m.__name__: session.exec(select(func.count()).select_from(m)).one() for m in COUNTED}


def fresh(session: Session, model, pk):
    session.expire_all()
    return session.get(model, pk)
