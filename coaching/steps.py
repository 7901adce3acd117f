"""Action steps: replaying the state machine onto stored rows, manual mastery, dropping, the
library ordered by need, and each step's history."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import case
from sqlmodel import Session, col, delete, select

from coaching import access, audit
from coaching.errors import NotFound, PermissionDenied, ValidationError
from coaching.goals import active_goal, close_goal, set_goal
from coaching.lifecycle import RevisitFact, replay
from coaching.timeutil import local_date
from db.models import ActionStep, LibraryStep, Observation, Revisit, StepEvent, Teacher, User, utcnow

__all__ = [
    "MANUAL_MASTERY_CAUSE",
    "active_goal",
    "aware",
    "check_text",
    "close_goal",
    "drop_step",
    "library_for",
    "mark_mastered",
    "open_and_mastered_steps",
    "replay_step",
    "set_goal",
    "step_history",
    "steps_for_teacher",
]

MANUAL_MASTERY_CAUSE = "marked mastered by "
ASSIGNED_CAUSE = "assigned"


def aware(moment: datetime | None) -> datetime | None:
    """Stored instants are UTC; SQLite hands them back naive, so re-attach UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def check_text(*values: str | None, field: str | None = None) -> None:
    """Refuse text PostgreSQL cannot store (a NUL character); a browser never sends one."""
    if any(v and "\x00" in v for v in values):
        raise ValidationError(
            "The text contains a NUL character, which cannot be stored; remove it.", field=field
        )


def replay_step(session: Session, step: ActionStep) -> ActionStep:
    """Recompute a step's state from all its revisits (in date order), its manual mastery and its
    drop, and rewrite its history. Adds to the session; the caller commits."""
    rows = session.exec(
        select(Revisit.rating, Revisit.observation_id, Observation.observed_at)
        .join(Observation, Observation.id == Revisit.observation_id)
        .where(Revisit.step_id == step.id)
    ).all()
    facts = [RevisitFact(at=aware(at), observation_id=oid, rating=rating) for rating, oid, at in rows]
    manual = session.exec(
        select(StepEvent).where(
            StepEvent.step_id == step.id, col(StepEvent.cause).startswith(MANUAL_MASTERY_CAUSE)
        )
    ).all()
    # A manual mastery acts as an "implemented" revisit at the time it was marked; its own event
    # row is kept (it is the only record of it), so the replay's copy of that event is skipped.
    facts += [RevisitFact(at=aware(e.at), observation_id=0, rating="implemented") for e in manual]
    out = replay(facts, dropped_at=aware(step.dropped_at))

    step.state = out.state
    step.mastered_at = out.mastered_at
    step.sustained_at = out.sustained_at
    step.updated_at = utcnow()
    session.add(step)
    session.exec(
        delete(StepEvent).where(
            StepEvent.step_id == step.id, ~col(StepEvent.cause).startswith(MANUAL_MASTERY_CAUSE)
        )
    )
    session.add(
        StepEvent(
            step_id=step.id, at=aware(step.assigned_at), from_state="", to_state="open", cause=ASSIGNED_CAUSE
        )
    )
    for at, before, after, cause in out.events:
        if cause.endswith("(observation 0)"):
            continue
        if after == "dropped":
            cause = f"dropped: {step.drop_reason}"[:200]
        session.add(StepEvent(step_id=step.id, at=at, from_state=before, to_state=after, cause=cause))
    return step


def _visible_step(session: Session, user: User, step_id: int) -> ActionStep:
    step = session.exec(
        select(ActionStep)
        .join(Teacher, Teacher.id == ActionStep.teacher_id)
        .where(ActionStep.id == step_id, access.teacher_clause(session, user))
    ).first()
    if step is None:
        raise NotFound("That action step does not exist or is not visible to you.")
    return step


def _step_dict(step: ActionStep, today=None) -> dict:
    today = today or local_date(utcnow())
    return {
        "id": step.id,
        "teacher_id": step.teacher_id,
        "title": step.title,
        "domain_code": step.domain_code,
        "custom_text": step.custom_text,
        "state": step.state,
        "assigned_at": aware(step.assigned_at),
        "days_open": (today - local_date(aware(step.assigned_at))).days,
        "check_back_on": step.check_back_on,
        "past_check_back": step.state == "open" and step.check_back_on < today,
        "mastered_at": aware(step.mastered_at),
        "sustained_at": aware(step.sustained_at),
        "dropped_at": aware(step.dropped_at),
        "drop_reason": step.drop_reason,
    }


def open_and_mastered_steps(*, session: Session, user: User, teacher_id: int) -> list[dict]:
    """The teacher's open and mastered steps (what a revisit rates), oldest first."""
    access.get_teacher(session, user, teacher_id)
    steps = session.exec(
        select(ActionStep)
        .where(ActionStep.teacher_id == teacher_id, col(ActionStep.state).in_(("open", "mastered")))
        .order_by(ActionStep.assigned_at, ActionStep.id)
    ).all()
    return [_step_dict(s) for s in steps]


def steps_for_teacher(*, session: Session, user: User, teacher_id: int) -> list[dict]:
    """Every step of the teacher (any state) with its history, open ones first."""
    access.get_teacher(session, user, teacher_id)
    order = case({"open": 0, "mastered": 1, "sustained": 2, "dropped": 3}, value=ActionStep.state, else_=4)
    steps = session.exec(
        select(ActionStep)
        .where(ActionStep.teacher_id == teacher_id)
        .order_by(order, ActionStep.assigned_at.desc(), ActionStep.id)
    ).all()
    out = []
    for s in steps:
        d = _step_dict(s)
        d["history"] = _history(session, s.id)
        out.append(d)
    return out


_OBSERVATION_ID = re.compile(r"(?<=\()observation (\d+)(?=\))")  # as coaching.lifecycle writes causes


def _history(session: Session, step_id: int) -> list[dict]:
    events = session.exec(
        select(StepEvent).where(StepEvent.step_id == step_id).order_by(StepEvent.at, StepEvent.id)
    ).all()
    revisits = session.exec(
        select(Revisit).where(Revisit.step_id == step_id).order_by(Revisit.revisited_at, Revisit.id)
    ).all()
    # Observations are named by their school-local date (an internal id means nothing to a reader);
    # a revisit is stamped with its observation's time, and state changes name it "(observation N)".
    seen_on = {r.observation_id: local_date(aware(r.revisited_at)).isoformat() for r in revisits}

    def named(match: re.Match) -> str:
        day = seen_on.get(int(match.group(1)))
        return f"observation of {day}" if day else match.group(0)

    rows = [
        {
            "at": aware(e.at),
            "kind": "state",
            "what": f"{e.from_state or 'new'} -> {e.to_state}",
            "cause": _OBSERVATION_ID.sub(named, e.cause or ""),
        }
        for e in events
    ]
    rows += [
        {
            "at": aware(r.revisited_at),
            "kind": "revisit",
            "what": r.rating.replace("_", " "),
            "cause": f"observation of {seen_on[r.observation_id]}" + (f": {r.note}" if r.note else ""),
        }
        for r in revisits
    ]
    return sorted(rows, key=lambda r: (r["at"], r["kind"] != "revisit"))


def step_history(*, session: Session, user: User, step_id: int) -> list[dict]:
    """The step's state changes and revisits in date order (mastery kept even after a reopen)."""
    _visible_step(session, user, step_id)
    return _history(session, step_id)


def _require_coach(user: User) -> None:
    if not access.can_observe(user):
        raise PermissionDenied("Only a coach or an admin can change action steps.")


def drop_step(*, session: Session, step_id: int, reason: str, by: User) -> ActionStep:
    """Drop an open or mastered step with a reason (terminal); audited."""
    _require_coach(by)
    reason = (reason or "").strip()
    check_text(reason, field="reason")
    if not reason:
        raise ValidationError("Say why the step is dropped (a short reason).", field="reason")
    step = _visible_step(session, by, step_id)
    if step.state not in ("open", "mastered"):
        raise ValidationError(
            f"This step is already {step.state}; only open or mastered steps can be dropped."
        )
    old = step.state
    step.dropped_at = utcnow()
    step.drop_reason = reason[:1000]
    replay_step(session, step)
    audit.record(
        session,
        by=by,
        action="update",
        entity="action_step",
        entity_id=step.id,
        detail={"state": {"old": old, "new": "dropped"}, "reason": reason},
    )
    session.commit()
    return step


def mark_mastered(*, session: Session, step_id: int, by: User) -> ActionStep:
    """Mark an open step mastered now, outside an observation (a manual mastery); audited."""
    _require_coach(by)
    step = _visible_step(session, by, step_id)
    if step.state != "open":
        raise ValidationError(f"Only an open step can be marked mastered; this one is {step.state}.")
    session.add(
        StepEvent(
            step_id=step.id,
            at=utcnow(),
            from_state="open",
            to_state="mastered",
            cause=(MANUAL_MASTERY_CAUSE + by.display_name)[:200],
        )
    )
    session.flush()
    replay_step(session, step)
    audit.record(
        session,
        by=by,
        action="update",
        entity="action_step",
        entity_id=step.id,
        detail={"state": {"old": "open", "new": step.state}, "manual": True},
    )
    session.commit()
    return step


def library_for(*, session: Session, domain_codes_order: list[str]) -> list[LibraryStep]:
    """Active library entries, the domains in `domain_codes_order` first (in that order)."""
    rank = {code: i for i, code in enumerate(domain_codes_order)}
    entries = session.exec(
        select(LibraryStep)
        .where(LibraryStep.status == "active")
        .order_by(LibraryStep.domain_code, LibraryStep.code)
    ).all()
    return sorted(entries, key=lambda e: (rank.get(e.domain_code, len(rank)), e.domain_code, e.code))
