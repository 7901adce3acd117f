"""Admin actions on accounts and teachers. Every function takes the acting admin (`by=`), refuses
anyone else with PermissionDenied, writes an audit row and commits."""

from __future__ import annotations

import json
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, or_
from sqlmodel import Session, select

from coaching import audit
from coaching.access import require_role
from coaching.errors import NotFound, ValidationError
from coaching.users import (
    MAX_USERNAME_LENGTH,
    create_user,
    generate_password,
    hash_password,
    revoke_cookies,
    validate_password,
)
from db.models import (
    ROLES,
    ActionStep,
    AuditLog,
    Brief,
    CoachingGoal,
    DomainScore,
    Observation,
    ObservationDraft,
    Revisit,
    School,
    StepEvent,
    Teacher,
    User,
    UserSchool,
)

# Random one-time passwords carry ~96 bits of entropy, so a lower bcrypt cost loses nothing and
# keeps a bulk creation of a few hundred logins to seconds instead of minutes.
ONE_TIME_ROUNDS = 10


def _admin(by: User) -> None:
    require_role(by, "admin")


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("That user does not exist.")
    return user


def _schools_of(session: Session, user_id: int) -> list[int]:
    return sorted(session.exec(select(UserSchool.school_id).where(UserSchool.user_id == user_id)).all())


def _other_active_admins(session: Session, user_id: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.active == True, User.id != user_id)  # noqa: E712
    ).one()


def list_users(*, session: Session, by: User) -> pd.DataFrame:
    """Every account with its role, schools and state (never its password hash)."""
    _admin(by)
    schools = {s.id: s.name for s in session.exec(select(School))}
    links: dict[int, list[str]] = {}
    for link in session.exec(select(UserSchool)):
        links.setdefault(link.user_id, []).append(schools.get(link.school_id, "?"))
    rows = [
        {
            "id": u.id,
            "username": u.username,
            "name": u.display_name,
            "role": u.role,
            "schools": ", ".join(sorted(links.get(u.id, []))),
            "active": u.active,
            "locked": u.locked,
            "failed logins": u.failed_logins,
            "must change password": u.must_change_password,
        }
        for u in session.exec(select(User).order_by(User.username))
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "id",
            "username",
            "name",
            "role",
            "schools",
            "active",
            "locked",
            "failed logins",
            "must change password",
        ],
    )


def create_account(
    *,
    session: Session,
    by: User,
    username: str,
    display_name: str,
    role: str,
    password: str = "",
    email: str = "",
    school_ids: list[int] | None = None,
) -> tuple[User, str]:
    """Create one account. With no password, a random one is generated; it is returned to be shown
    once and the user must change it at first sign-in."""
    _admin(by)
    generated = not password
    if generated:
        password = generate_password()
    user = create_user(
        session=session,
        username=username,
        role=role,
        display_name=display_name,
        password=password,
        email=email,
        school_ids=school_ids,
        by=by,
        must_change_password=generated,
    )
    return user, password if generated else ""


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    parts = re.findall(r"[a-z0-9]+", ascii_name)
    return ".".join(parts)[:60] or "teacher"


def bulk_create_teacher_logins(*, session: Session, by: User, school_id: int | None = None) -> pd.DataFrame:
    """A login for every active teacher on the roster who has none: usernames from names, random
    passwords returned once (columns teacher, school, username, password). Audited."""
    _admin(by)
    stmt = select(Teacher).where(Teacher.user_id.is_(None), Teacher.active == True)  # noqa: E712
    if school_id is not None:
        stmt = stmt.where(Teacher.school_id == school_id)
    teachers = list(session.exec(stmt.order_by(Teacher.name, Teacher.id)).all())
    taken = {u.lower() for u in session.exec(select(User.username)).all()}
    plan = []
    for t in teachers:
        base = _slug(t.name)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base[: MAX_USERNAME_LENGTH - len(str(n))]}{n}"  # stays a valid username
        taken.add(name)
        plan.append((t, name, generate_password()))
    with ThreadPoolExecutor(max_workers=4) as pool:  # bcrypt releases the GIL
        hashes = list(pool.map(lambda p: hash_password(p[2], rounds=ONE_TIME_ROUNDS), plan))
    schools = {s.id: s.name for s in session.exec(select(School))}
    rows = []
    for (t, name, password), hashed in zip(plan, hashes, strict=True):
        user = create_user(
            session=session,
            username=name,
            role="teacher",
            display_name=t.name,
            password="",
            password_hash=hashed,
            email=t.email,
            by=by,
            must_change_password=True,
            commit=False,
        )
        t.user_id = user.id
        session.add(t)
        rows.append(
            {
                "teacher": t.name,
                "school": schools.get(t.school_id, ""),
                "username": name,
                "password": password,
            }
        )
    audit.record(
        session,
        by=by,
        action="bulk_create",
        entity="user",
        detail={"teacher_logins": len(rows), "school_id": school_id},
    )
    session.commit()
    return pd.DataFrame(rows, columns=["teacher", "school", "username", "password"])


def reset_password(*, session: Session, by: User, user_id: int) -> str:
    """Give the user a new random password (returned to be shown once); they must change it at their
    next sign-in. Clears the failed-attempt counter (the lock stays until unlocked)."""
    _admin(by)
    user = _user(session, user_id)
    password = generate_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.failed_logins = 0
    session.add(user)
    revoke_cookies(session, user.id)
    audit.record(session, by=by, action="reset_password", entity="user", entity_id=user.id)
    session.commit()
    return password


def set_password(*, session: Session, by: User, user_id: int, password: str) -> None:
    """Set a chosen password for a user (they must change it at their next sign-in)."""
    _admin(by)
    validate_password(password)
    user = _user(session, user_id)
    user.password_hash = hash_password(password)
    user.must_change_password = True
    session.add(user)
    revoke_cookies(session, user.id)
    audit.record(session, by=by, action="reset_password", entity="user", entity_id=user.id)
    session.commit()


def change_role(*, session: Session, by: User, user_id: int, role: str) -> User:
    """Change a user's role (the last active admin cannot stop being one)."""
    _admin(by)
    if role not in ROLES:
        raise ValidationError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.", field="role")
    user = _user(session, user_id)
    if user.role == role:
        return user
    if user.role == "admin" and user.active and _other_active_admins(session, user.id) == 0:
        raise ValidationError("This is the last active admin; make another admin first.")
    old = user.role
    user.role = role
    session.add(user)
    audit.record(
        session,
        by=by,
        action="update",
        entity="user",
        entity_id=user.id,
        detail=audit.changes({"role": old}, {"role": role}),
    )
    session.commit()
    return user


def set_schools(*, session: Session, by: User, user_id: int, school_ids: list[int]) -> User:
    """Replace the schools a leader or coach belongs to."""
    _admin(by)
    user = _user(session, user_id)
    wanted = sorted(set(school_ids))
    for sid in wanted:
        if session.get(School, sid) is None:
            raise ValidationError(f"School {sid} does not exist.", field="school_ids")
    old = _schools_of(session, user.id)
    if old == wanted:
        return user
    session.exec(delete(UserSchool).where(UserSchool.user_id == user.id))
    for sid in wanted:
        session.add(UserSchool(user_id=user.id, school_id=sid))
    audit.record(
        session,
        by=by,
        action="update",
        entity="user",
        entity_id=user.id,
        detail=audit.changes({"schools": old}, {"schools": wanted}),
    )
    session.commit()
    return user


def _flag(session: Session, by: User, user_id: int, action: str, **values: Any) -> User:
    user = _user(session, user_id)
    for field, value in values.items():
        setattr(user, field, value)
    session.add(user)
    audit.record(session, by=by, action=action, entity="user", entity_id=user.id)
    session.commit()
    return user


def lock_user(*, session: Session, by: User, user_id: int) -> User:
    """Lock an account: it cannot sign in until unlocked (its open sessions end)."""
    _admin(by)
    if user_id == by.id:
        raise ValidationError("You cannot lock your own account.")
    return _flag(session, by, user_id, "lock", locked=True)


def unlock_user(*, session: Session, by: User, user_id: int) -> User:
    """Unlock an account and clear its failed-attempt counter."""
    _admin(by)
    return _flag(session, by, user_id, "unlock", locked=False, failed_logins=0)


def deactivate_user(*, session: Session, by: User, user_id: int) -> User:
    """Deactivate an account: it cannot sign in and its sessions end; its history is kept."""
    _admin(by)
    user = _user(session, user_id)
    if user.id == by.id:
        raise ValidationError("You cannot deactivate your own account.")
    if user.role == "admin" and _other_active_admins(session, user.id) == 0:
        raise ValidationError("This is the last active admin; make another admin first.")
    return _flag(session, by, user_id, "deactivate", active=False)


def reactivate_user(*, session: Session, by: User, user_id: int) -> User:
    """Let a deactivated account sign in again."""
    _admin(by)
    return _flag(session, by, user_id, "reactivate", active=True)


def assign_coach(*, session: Session, by: User, teacher_id: int, coach_id: int | None) -> Teacher:
    """Put a teacher in a coach's caseload (None: no coach)."""
    _admin(by)
    teacher = session.get(Teacher, teacher_id)
    if teacher is None:
        raise NotFound("That teacher does not exist.")
    if coach_id is not None:
        coach = session.get(User, coach_id)
        if coach is None or coach.role not in ("coach", "admin") or not coach.active:
            raise ValidationError("Choose an active coach.", field="coach_id")
    if teacher.coach_id == coach_id:
        return teacher
    old = teacher.coach_id
    teacher.coach_id = coach_id
    session.add(teacher)
    audit.record(
        session,
        by=by,
        action="assign_coach",
        entity="teacher",
        entity_id=teacher.id,
        detail=audit.changes({"coach_id": old}, {"coach_id": coach_id}),
    )
    session.commit()
    return teacher


# Audit entities that describe a teacher's records (other helpers' names included).
_RECORD_ENTITIES = {
    "teacher": "teacher",
    "observation": "observation",
    "debrief": "observation",
    "acknowledgement": "observation",
    "reflection": "observation",
    "action_step": "step",
    "step": "step",
    "revisit": "revisit",
    "coaching_goal": "goal",
    "goal": "goal",
    "brief": "brief",
}


def _mentions(value: Any, teacher_id: int, ids: dict[str, set[int]], name: str) -> bool:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "teacher_id" and v == teacher_id:
                return True
            if k in ("observation_id", "step_id") and v in ids["observation" if k[0] == "o" else "step"]:
                return True
            if _mentions(v, teacher_id, ids, name):
                return True
        return False
    if isinstance(value, list):
        return any(_mentions(v, teacher_id, ids, name) for v in value)
    return isinstance(value, str) and bool(name) and name.lower() in value.lower()


def delete_teacher_records(*, session: Session, by: User, teacher_id: int) -> dict[str, int]:
    """Delete everything recorded about a teacher (a district's deletion duty): observations, scores,
    steps, revisits, goals, briefs, drafts, the teacher row; their login is anonymised and disabled.
    Earlier audit details about those records are blanked; the new audit row keeps only the counts."""
    _admin(by)
    teacher = session.get(Teacher, teacher_id)
    if teacher is None:
        raise NotFound("That teacher does not exist.")
    name = teacher.name
    obs_ids = set(session.exec(select(Observation.id).where(Observation.teacher_id == teacher_id)).all())
    step_ids = set(
        session.exec(
            select(ActionStep.id).where(
                or_(ActionStep.teacher_id == teacher_id, ActionStep.observation_id.in_(obs_ids or [-1]))
            )
        ).all()
    )
    revisit_ids = set(
        session.exec(
            select(Revisit.id).where(
                or_(Revisit.step_id.in_(step_ids or [-1]), Revisit.observation_id.in_(obs_ids or [-1]))
            )
        ).all()
    )
    goal_ids = set(session.exec(select(CoachingGoal.id).where(CoachingGoal.teacher_id == teacher_id)).all())
    brief_ids = set(session.exec(select(Brief.id).where(Brief.teacher_id == teacher_id)).all())
    ids = {
        "teacher": {teacher_id},
        "observation": obs_ids,
        "step": step_ids,
        "revisit": revisit_ids,
        "goal": goal_ids,
        "brief": brief_ids,
    }
    counts: dict[str, int] = {}

    def _delete(label: str, stmt) -> None:
        counts[label] = counts.get(label, 0) + (session.exec(stmt).rowcount or 0)

    drafts = 0
    for draft in session.exec(select(ObservationDraft)).all():
        try:
            payload = json.loads(draft.payload)
        except ValueError:
            continue
        if _mentions(payload, teacher_id, ids, ""):
            session.delete(draft)
            drafts += 1
    _delete("revisits", delete(Revisit).where(Revisit.id.in_(revisit_ids or [-1])))
    _delete("step_events", delete(StepEvent).where(StepEvent.step_id.in_(step_ids or [-1])))
    _delete("action_steps", delete(ActionStep).where(ActionStep.id.in_(step_ids or [-1])))
    _delete("domain_scores", delete(DomainScore).where(DomainScore.observation_id.in_(obs_ids or [-1])))
    _delete("observations", delete(Observation).where(Observation.id.in_(obs_ids or [-1])))
    _delete("goals", delete(CoachingGoal).where(CoachingGoal.teacher_id == teacher_id))
    _delete("briefs", delete(Brief).where(Brief.teacher_id == teacher_id))
    counts["drafts"] = drafts
    login_id = teacher.user_id
    _delete("teachers", delete(Teacher).where(Teacher.id == teacher_id))
    counts["audit_entries_blanked"] = _blank_audit(session, teacher_id, ids, name, login_id)
    if login_id is not None:
        login = session.get(User, login_id)
        if login is not None:
            # Audit rows and other tables keep the user id; the name and credentials go.
            login.username = f"deleted-{login.id}"
            login.display_name = "Deleted user"
            login.email = ""
            login.password_hash = None
            login.active = False
            session.add(login)
            counts["logins_anonymised"] = 1
    audit.record(
        session,
        by=by,
        action="delete_records",
        entity="teacher",
        entity_id=teacher_id,
        detail={"counts": counts},
    )
    session.commit()
    return counts


def _blank_audit(
    session: Session, teacher_id: int, ids: dict[str, set[int]], name: str, login_id: int | None
) -> int:
    # Narrow in SQL first (the log can be large); the JSON check below decides.
    conds = [AuditLog.detail.contains('"teacher_id"'), AuditLog.detail.contains("observation_id")]
    conds.append(AuditLog.detail.contains("step_id"))
    for form in {name, json.dumps(name)[1:-1]} - {""}:  # audit JSON escapes non-ASCII letters
        conds.append(func.lower(AuditLog.detail).contains(form.lower(), autoescape=True))
    for entity, kind in _RECORD_ENTITIES.items():
        wanted = [str(i) for i in ids.get(kind, set())]
        if wanted:
            conds.append((AuditLog.entity == entity) & AuditLog.entity_id.in_(wanted))
    if login_id is not None:
        conds.append(AuditLog.user_id == login_id)
        conds.append((AuditLog.entity == "user") & (AuditLog.entity_id == str(login_id)))
    blanked = 0
    for row in session.exec(select(AuditLog).where(or_(*conds))).all():
        kind = _RECORD_ENTITIES.get(row.entity)
        about_record = (
            kind is not None
            and row.entity_id is not None
            and row.entity_id.isdigit()
            and int(row.entity_id) in ids.get(kind, set())
        )
        about_login = login_id is not None and (
            row.user_id == login_id or (row.entity == "user" and row.entity_id == str(login_id))
        )
        try:
            detail = json.loads(row.detail or "{}")
        except ValueError:
            detail = row.detail
        if about_record or about_login or _mentions(detail, teacher_id, ids, name):
            if row.detail != "{}":
                row.detail = "{}"
                blanked += 1
            if about_login:
                row.username = f"deleted-{login_id}"
            session.add(row)
    return blanked


def audit_entries(
    *,
    session: Session,
    by: User,
    username: str | None = None,
    entity: str | None = None,
    action: str | None = None,
    start: date | None = None,
    end: date | None = None,
    limit: int = 1000,
) -> pd.DataFrame:
    """The audit log, newest first, filtered by who, entity, action and an inclusive UTC date range."""
    _admin(by)
    stmt = select(AuditLog)
    if username:
        stmt = stmt.where(AuditLog.username == username)
    if entity:
        stmt = stmt.where(AuditLog.entity == entity)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if start:
        stmt = stmt.where(AuditLog.at >= datetime.combine(start, time.min, tzinfo=UTC))
    if end:
        stmt = stmt.where(AuditLog.at < datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))
    rows = session.exec(stmt.order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)).all()
    return pd.DataFrame(
        [
            {
                "when (UTC)": r.at,
                "user": r.username,
                "action": r.action,
                "entity": r.entity,
                "id": r.entity_id or "",
                "detail": "" if r.detail == "{}" else r.detail,
            }
            for r in rows
        ],
        columns=["when (UTC)", "user", "action", "entity", "id", "detail"],
    )


def audit_filter_options(*, session: Session, by: User) -> dict[str, list[str]]:
    """The distinct users, entities and actions in the audit log (for the filters)."""
    _admin(by)
    return {
        "users": sorted(session.exec(select(AuditLog.username).distinct()).all()),
        "entities": sorted(session.exec(select(AuditLog.entity).distinct()).all()),
        "actions": sorted(session.exec(select(AuditLog.action).distinct()).all()),
    }


def teachers_and_coaches(*, session: Session, by: User) -> tuple[list[Teacher], list[User]]:
    """Every teacher (active first) and every active coach, for the admin's pickers."""
    _admin(by)
    teachers = list(session.exec(select(Teacher).order_by(Teacher.name, Teacher.id)).all())
    coaches = list(
        session.exec(
            select(User).where(User.role == "coach", User.active == True).order_by(User.display_name)  # noqa: E712
        ).all()
    )
    return teachers, coaches


def all_schools(*, session: Session, by: User) -> list[School]:
    """Every school, by name."""
    _admin(by)
    return list(session.exec(select(School).order_by(School.name)).all())


def user_schools(*, session: Session, by: User, user_id: int) -> list[int]:
    """The school ids a user belongs to."""
    _admin(by)
    return _schools_of(session, user_id)
