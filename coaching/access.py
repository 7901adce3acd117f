"""Who may see what. Every query in coaching/ narrows by the current user through these helpers.

admin: everything. leader: their schools (never coach-private notes). coach: their caseload
(teachers whose coach they are), observations they made, and aggregate views of their schools.
teacher: only their own teacher record, observations and steps.
"""

from __future__ import annotations

from sqlalchemy import false, or_, true
from sqlmodel import Session, select

from coaching.errors import NotFound, PermissionDenied
from db.models import Observation, Teacher, User, UserSchool


def require_role(user: User, *roles: str) -> None:
    """Raise PermissionDenied unless the user is active and has one of `roles`."""
    if user is None or not user.active or user.locked:
        raise PermissionDenied("Please sign in.")
    if user.role not in roles:
        raise PermissionDenied("Your role does not allow this.")


def school_ids(session: Session, user: User) -> list[int] | None:
    """The schools a leader or coach belongs to; None means all (admin)."""
    if _disabled(user):
        return []
    if user.role == "admin":
        return None
    if user.role == "teacher":
        teacher = own_teacher(session, user)
        return [teacher.school_id] if teacher else []
    return list(session.exec(select(UserSchool.school_id).where(UserSchool.user_id == user.id)).all())


def own_teacher(session: Session, user: User) -> Teacher | None:
    """The teacher record linked to a teacher login."""
    return session.exec(select(Teacher).where(Teacher.user_id == user.id)).first()


def _disabled(user: User | None) -> bool:
    # A deactivated or locked account sees nothing, even through a stale User object.
    return user is None or not user.active or user.locked


def teacher_clause(session: Session, user: User):
    """A WHERE clause on Teacher limiting rows to the teachers `user` may see."""
    if _disabled(user):
        return false()
    if user.role == "admin":
        return true()
    if user.role == "leader":
        return Teacher.school_id.in_(school_ids(session, user) or [-1])
    if user.role == "coach":
        made = select(Observation.teacher_id).where(Observation.observer_id == user.id)
        return or_(Teacher.coach_id == user.id, Teacher.id.in_(made))
    if user.role == "teacher":
        return Teacher.user_id == user.id
    return false()


def observation_clause(session: Session, user: User):
    """A WHERE clause on Observation limiting rows to those `user` may see."""
    if _disabled(user):
        return false()
    if user.role == "admin":
        return true()
    if user.role == "leader":
        return Observation.school_id.in_(school_ids(session, user) or [-1])
    if user.role == "coach":
        mine = select(Teacher.id).where(Teacher.coach_id == user.id)
        return or_(Observation.observer_id == user.id, Observation.teacher_id.in_(mine))
    if user.role == "teacher":
        mine = select(Teacher.id).where(Teacher.user_id == user.id)
        return Observation.teacher_id.in_(mine)
    return false()


def visible_teachers(session: Session, user: User, *, include_inactive: bool = False) -> list[Teacher]:
    """Teachers the user may see, by name."""
    stmt = select(Teacher).where(teacher_clause(session, user))
    if not include_inactive:
        stmt = stmt.where(Teacher.active == True)  # noqa: E712
    return list(session.exec(stmt.order_by(Teacher.name)).all())


def get_teacher(session: Session, user: User, teacher_id: int) -> Teacher:
    """The teacher, if `user` may see them; NotFound otherwise (no hint that the id exists)."""
    teacher = session.exec(
        select(Teacher).where(Teacher.id == teacher_id, teacher_clause(session, user))
    ).first()
    if teacher is None:
        raise NotFound("That teacher is not in your caseload.")
    return teacher


def get_observation(session: Session, user: User, observation_id: int) -> Observation:
    """The observation, if `user` may see it; NotFound otherwise."""
    obs = session.exec(
        select(Observation).where(Observation.id == observation_id, observation_clause(session, user))
    ).first()
    if obs is None:
        raise NotFound("That observation does not exist or is not visible to you.")
    return obs


def can_read_notes(user: User, obs: Observation) -> bool:
    """Leaders never read notes marked private to coach and teacher: the observation's notes and
    its debrief notes (scores stay visible). Use it wherever either is shown or exported."""
    if _disabled(user):
        return False
    return not (obs.notes_private and user.role not in ("admin", "coach", "teacher"))


def can_observe(user: User) -> bool:
    """Coaches and admins log observations (leaders who also observe get a coach account)."""
    return user.role in ("admin", "coach")
