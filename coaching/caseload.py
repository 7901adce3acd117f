"""The caseload: every teacher a user coaches, with cadence, open steps and pending debriefs,
sorted by urgency; and the list of observations still waiting for a debrief."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from coaching import access
from coaching.errors import PermissionDenied
from coaching.settings import get_settings
from coaching.steps import aware
from coaching.timeutil import local_date, local_day_bounds
from db.models import ActionStep, AppSetting, Observation, School, Teacher, User, utcnow

DEMO_KEY = "demo_seeded"  # the AppSetting the demo seed writes (seeds/demo.py)

DEBRIEF_FLAG_HOURS = 48
STATUS_RANK = {"overdue": 0, "due": 1, "ok": 2}
COLUMNS = [
    "teacher_id",
    "teacher",
    "school",
    "last_observed",
    "days_since",
    "status",
    "open_steps",
    "steps_past_check_back",
    "oldest_open_step_days",
    "debriefs_pending",
    "flagged_debriefs",
]


def _teachers(session: Session, user: User) -> list[Teacher]:
    stmt = select(Teacher).where(Teacher.active == True)  # noqa: E712
    if user.role == "coach":
        stmt = stmt.where(Teacher.coach_id == user.id)
    elif user.role == "leader":
        stmt = stmt.where(col(Teacher.school_id).in_(access.school_ids(session, user) or [-1]))
    elif user.role != "admin":
        raise PermissionDenied("The caseload is for coaches, leaders and admins.")
    return list(session.exec(stmt.order_by(Teacher.name)).all())


def _reference(today: date | None, now: datetime | None) -> tuple[date, datetime]:
    if now is None:
        now = utcnow() if today is None else local_day_bounds(today, today)[1]
    return (today or local_date(now)), aware(now)


def status_for(days_since: int | None) -> str:
    """ok / due / overdue by the cadence settings; never observed counts as overdue."""
    s = get_settings()
    if days_since is None or days_since >= s.overdue_days:
        return "overdue"
    return "due" if days_since >= s.due_days else "ok"


def caseload(
    *, session: Session, user: User, today: date | None = None, now: datetime | None = None
) -> pd.DataFrame:
    """One row per teacher the user coaches (coach: own caseload; leader: their schools; admin:
    all), most urgent first: overdue, then due, then ok; within each, most days since first."""
    access.require_role(user, "admin", "leader", "coach")
    today, now = _reference(today, now)
    teachers = _teachers(session, user)
    if not teachers:
        return pd.DataFrame(columns=COLUMNS)
    ids = [t.id for t in teachers]
    schools = dict(session.exec(select(School.id, School.name)).all())
    flag_before = now - timedelta(hours=DEBRIEF_FLAG_HOURS)
    undebriefed = Observation.debriefed_at == None  # noqa: E711
    obs_rows = session.exec(
        select(
            Observation.teacher_id,
            func.max(Observation.observed_at),
            func.sum(case((undebriefed, 1), else_=0)),
            func.sum(case((and_(undebriefed, Observation.observed_at < flag_before), 1), else_=0)),
        )
        .where(col(Observation.teacher_id).in_(ids))
        .group_by(Observation.teacher_id)
    ).all()
    obs = {
        tid: (aware(last), int(pending or 0), int(flagged or 0)) for tid, last, pending, flagged in obs_rows
    }
    step_rows = session.exec(
        select(ActionStep.teacher_id, ActionStep.assigned_at, ActionStep.check_back_on).where(
            col(ActionStep.teacher_id).in_(ids), ActionStep.state == "open"
        )
    ).all()
    steps: dict[int, list[tuple[datetime, date]]] = {}
    for tid, assigned, back in step_rows:
        steps.setdefault(tid, []).append((aware(assigned), back))

    records = []
    for t in teachers:
        last, pending, flagged = obs.get(t.id, (None, 0, 0))
        days = None if last is None else (today - local_date(last)).days
        open_ = steps.get(t.id, [])
        records.append(
            {
                "teacher_id": t.id,
                "teacher": t.name,
                "school": schools.get(t.school_id, ""),
                "last_observed": None if last is None else local_date(last),
                "days_since": days,
                "status": status_for(days),
                "open_steps": len(open_),
                "steps_past_check_back": sum(1 for _, back in open_ if back < today),
                "oldest_open_step_days": max(((today - local_date(a)).days for a, _ in open_), default=None),
                "debriefs_pending": pending,
                "flagged_debriefs": flagged,
            }
        )
    records.sort(
        key=lambda r: (
            STATUS_RANK[r["status"]],
            -(r["days_since"] if r["days_since"] is not None else 10**6),
            r["teacher"],
        )
    )
    df = pd.DataFrame.from_records(records, columns=COLUMNS)
    df["days_since"] = df["days_since"].astype("Int64")
    df["oldest_open_step_days"] = df["oldest_open_step_days"].astype("Int64")
    return df


def pending_debriefs(*, session: Session, user: User, now: datetime | None = None) -> list[dict]:
    """Observations without a debrief that the user may see (observer: their own), oldest first,
    each with hours since and whether it is flagged (no debrief after 48 h)."""
    access.require_role(user, "admin", "leader", "coach")
    now = aware(now) or utcnow()
    stmt = (
        select(Observation.id, Observation.observed_at, Teacher.name)
        .join(Teacher, Teacher.id == Observation.teacher_id)
        .where(Observation.debriefed_at == None, access.observation_clause(session, user))  # noqa: E711
    )
    if user.role == "coach":
        stmt = stmt.where(Observation.observer_id == user.id)
    rows = session.exec(stmt.order_by(Observation.observed_at, Observation.id).limit(500)).all()
    out = []
    for oid, at, name in rows:
        hours = (now - aware(at)).total_seconds() / 3600
        out.append(
            {
                "id": oid,
                "teacher": name,
                "observed_at": aware(at),
                "hours_since": round(hours, 1),
                "flagged": hours > DEBRIEF_FLAG_HOURS,
                "label": f"{name} · {local_date(at)} ({round(hours)} h ago)"
                + (" · overdue" if hours > DEBRIEF_FLAG_HOURS else ""),
            }
        )
    return out


def demo_dates_note(*, session: Session, today: date | None = None) -> str | None:
    """On a database holding the demo, once its school year is over: why every teacher shows as
    overdue (days are counted to today, and the demo's last school day was long ago)."""
    marker = session.get(AppSetting, DEMO_KEY)
    if marker is None:
        return None
    try:
        last_day = date.fromisoformat(json.loads(marker.value)["last_day"])
    except (ValueError, TypeError, KeyError):  # a demo seeded before the marker held its last day
        last = session.exec(select(func.max(Observation.observed_at))).one()
        if last is None:
            return None
        last_day = local_date(aware(last))
    today = today or local_date(datetime.now(UTC))
    if (today - last_day).days < get_settings().overdue_days:
        return None
    return (
        f"This is the demo school year, which ended {last_day.isoformat()}. "
        "Days since are counted to today, so teachers show as overdue until you observe them."
    )


def summary(table: pd.DataFrame) -> dict[str, float | int]:
    """Counts for the caseload header: teachers, overdue, due, coverage (share not overdue)."""
    n = len(table)
    overdue = int((table["status"] == "overdue").sum()) if n else 0
    due = int((table["status"] == "due").sum()) if n else 0
    return {"teachers": n, "overdue": overdue, "due": due, "coverage": (n - overdue) / n if n else 0.0}
