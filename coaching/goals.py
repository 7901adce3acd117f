"""A teacher's coaching goal: at most one active at a time, set and closed by a coach."""

from __future__ import annotations

from sqlmodel import Session, select

from coaching import access, audit
from coaching.errors import NotFound, PermissionDenied, ValidationError
from coaching.timeutil import local_date
from db.models import CoachingGoal, User, utcnow


def active_goal(*, session: Session, user: User, teacher_id: int) -> CoachingGoal | None:
    """The teacher's open coaching goal, if any."""
    access.get_teacher(session, user, teacher_id)
    return session.exec(
        select(CoachingGoal)
        .where(CoachingGoal.teacher_id == teacher_id, CoachingGoal.closed_on == None)  # noqa: E711
        .order_by(CoachingGoal.id.desc())
    ).first()


def set_goal(
    *, session: Session, teacher_id: int, text: str, domain_code: str = "", by: User
) -> CoachingGoal:
    """Set the teacher's coaching goal (closing the previous one); audited."""
    if not access.can_observe(by):
        raise PermissionDenied("Only a coach or an admin can set a coaching goal.")
    access.get_teacher(session, by, teacher_id)
    text = (text or "").strip()
    if "\x00" in text or "\x00" in (domain_code or ""):
        raise ValidationError(
            "The goal contains a NUL character, which cannot be stored; remove it.", field="text"
        )
    if len(domain_code or "") > 16:
        raise ValidationError("Unknown domain for the goal.", field="domain_code")
    if not text:
        raise ValidationError("Write the goal (one sentence is enough).", field="text")
    today = local_date(utcnow())
    previous = active_goal(session=session, user=by, teacher_id=teacher_id)
    if previous is not None:
        previous.closed_on = today
        session.add(previous)
        audit.record(
            session,
            by=by,
            action="update",
            entity="coaching_goal",
            entity_id=previous.id,
            detail={"closed_on": {"old": None, "new": today}},
        )
    goal = CoachingGoal(
        teacher_id=teacher_id, text=text, domain_code=domain_code or "", set_by=by.id, set_on=today
    )
    session.add(goal)
    session.flush()
    audit.record(
        session,
        by=by,
        action="create",
        entity="coaching_goal",
        entity_id=goal.id,
        detail={"teacher_id": teacher_id, "text": text, "domain_code": domain_code},
    )
    session.commit()
    return goal


def close_goal(*, session: Session, goal_id: int, by: User) -> CoachingGoal:
    """Close a coaching goal today; audited."""
    if not access.can_observe(by):
        raise PermissionDenied("Only a coach or an admin can close a coaching goal.")
    goal = session.get(CoachingGoal, goal_id)
    if goal is None:
        raise NotFound("That goal does not exist.")
    access.get_teacher(session, by, goal.teacher_id)
    if goal.closed_on is not None:
        return goal
    goal.closed_on = local_date(utcnow())
    session.add(goal)
    audit.record(
        session,
        by=by,
        action="update",
        entity="coaching_goal",
        entity_id=goal.id,
        detail={"closed_on": {"old": None, "new": goal.closed_on}},
    )
    session.commit()
    return goal
