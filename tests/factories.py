"""Small factories for hand-made data (direct model inserts; the domain save path is tested elsewhere)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlmodel import Session, select

from coaching.timeutil import as_utc, month_key
from coaching.users import hash_password
from db.models import (
    ActionStep,
    Block,
    Domain,
    DomainScore,
    Observation,
    Revisit,
    RubricVersion,
    School,
    Teacher,
    User,
    UserSchool,
)

_n = itertools.count(1)
_HASH: dict[str, str] = {}
PASSWORD = "correct-horse-battery"


def password_hash(pw: str = PASSWORD) -> str:
    if pw not in _HASH:
        _HASH[pw] = hash_password(pw)
    return _HASH[pw]


def rubric(session: Session) -> RubricVersion:
    """The default rubric from seeds (idempotent)."""
    from seeds import seed_library, seed_rubric

    rv = seed_rubric(session=session)
    seed_library(session=session)
    session.commit()
    return rv


def school(session: Session, name: str | None = None, enrolment: int = 400) -> School:
    i = next(_n)
    s = School(code=f"S{i}", name=name or f"School {i}", enrolment=enrolment)
    session.add(s)
    session.commit()
    return s


def user(
    session: Session,
    role: str,
    *,
    name: str | None = None,
    schools: list[School] = (),
    username: str | None = None,
    password: str = PASSWORD,
) -> User:
    i = next(_n)
    u = User(
        username=username or f"{role}{i}",
        display_name=name or f"{role.title()} {i}",
        role=role,
        password_hash=password_hash(password),
    )
    session.add(u)
    session.flush()
    for s in schools:
        session.add(UserSchool(user_id=u.id, school_id=s.id))
    session.commit()
    return u


def teacher(
    session: Session,
    school_: School,
    *,
    coach: User | None = None,
    name: str | None = None,
    grade_band: str = "3-5",
    login: User | None = None,
) -> Teacher:
    i = next(_n)
    t = Teacher(
        name=name or f"Teacher {i}",
        school_id=school_.id,
        grade_band=grade_band,
        subject="ELA",
        coach_id=coach.id if coach else None,
        user_id=login.id if login else None,
    )
    session.add(t)
    session.commit()
    return t


def observation(
    session: Session,
    teacher_: Teacher,
    observer: User,
    when: datetime,
    scores: dict[str, int | None],
    *,
    block_code: str = "WG",
    notes: str = "",
    debriefed_after_h: float | None = None,
    private: bool = False,
) -> Observation:
    """An observation with the given {domain code: score or None} marks."""
    rv = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).one()  # noqa: E712
    block = session.exec(select(Block).where(Block.code == block_code)).one()
    when = as_utc(when)
    obs = Observation(
        teacher_id=teacher_.id,
        observer_id=observer.id,
        observed_at=when,
        block_id=block.id,
        rubric_version_id=rv.id,
        notes=notes,
        notes_private=private,
        school_id=teacher_.school_id,
        grade_band=teacher_.grade_band,
        debriefed_at=None if debriefed_after_h is None else when + timedelta(hours=debriefed_after_h),
    )
    session.add(obs)
    session.flush()
    domains = {d.code: d for d in session.exec(select(Domain).where(Domain.rubric_version_id == rv.id))}
    for code, score in scores.items():
        session.add(
            DomainScore(
                observation_id=obs.id,
                domain_id=domains[code].id,
                domain_code=code,
                score=score,
                teacher_id=teacher_.id,
                school_id=teacher_.school_id,
                grade_band=teacher_.grade_band,
                observer_id=observer.id,
                block_id=block.id,
                rubric_version_id=rv.id,
                observed_at=when,
                month=month_key(when),
            )
        )
    session.commit()
    return obs


def step(session: Session, obs: Observation, title: str = "Wait time", *, state: str = "open") -> ActionStep:
    s = ActionStep(
        teacher_id=obs.teacher_id,
        observation_id=obs.id,
        title=title,
        assigned_by=obs.observer_id,
        assigned_at=obs.observed_at,
        check_back_on=(obs.observed_at + timedelta(days=14)).date(),
        state=state,
    )
    session.add(s)
    session.commit()
    return s


def revisit(session: Session, step_: ActionStep, obs: Observation, rating: str) -> Revisit:
    r = Revisit(step_id=step_.id, observation_id=obs.id, rating=rating, revisited_at=obs.observed_at)
    session.add(r)
    session.commit()
    return r
