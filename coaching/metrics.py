"""The program figures of DOMAIN.md ("Definitions of the program figures"), computed one way.

The CLI `metrics` command, the leaders' Outcomes page and the tests all call `program_metrics`, so
a leader, a coach and an auditor get the same number. Aggregates over domain scores are one
GROUP BY on `domain_score` (frozen dimensions, covering indexes); per-teacher work is small.
Floats are returned unrounded; round only when printing.
"""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Float, cast, func
from sqlmodel import Session, select

from coaching.settings import get_settings
from coaching.timeutil import local_date, local_day_bounds, school_year_of
from db.models import ActionStep, Domain, DomainScore, Observation, Revisit, RubricVersion, School, Teacher

METRIC_KEYS = (
    "window",
    "observations",
    "action_steps",
    "teachers_observed",
    "start_score",
    "end_score",
    "gain",
    "relative_gain",
    "sustained_coaching_share",
    "steps_per_teacher",
    "stick_rate",
    "effort_need_spearman",
    "feedback_latency_median_h",
    "feedback_within_48h_share",
    "domain_means",
    "domain_means_by_code",
    "coverage",
)
FEEDBACK_HOURS = 48


def default_window(*, session: Session) -> tuple[date, date]:
    """The most recent school year that has observations; with none, the school year of today."""
    latest = session.exec(select(func.max(Observation.observed_at))).one()
    day = local_date(_utc(latest)) if latest is not None else local_date(datetime.now(UTC))
    return school_year_of(day)


def _resolve_window(session: Session, start: date | None, end: date | None) -> tuple[date, date]:
    if start is None and end is None:
        return default_window(session=session)
    if start is None:
        start = school_year_of(end)[0]
    if end is None:
        end = school_year_of(start)[1]
    return start, end


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands stored UTC times back naive; make arithmetic always between aware UTC times.
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _observations(session: Session, lo: datetime, hi: datetime, school_ids: list[int] | None) -> pd.DataFrame:
    stmt = select(
        Observation.id, Observation.teacher_id, Observation.observed_at, Observation.debriefed_at
    ).where(Observation.observed_at >= lo, Observation.observed_at < hi)
    if school_ids is not None:
        stmt = stmt.where(Observation.school_id.in_(school_ids or [-1]))
    obs = pd.DataFrame(session.exec(stmt).all(), columns=["id", "teacher_id", "observed_at", "debriefed_at"])
    # Vectorised _utc: SQLite's naive times are UTC; PostgreSQL's aware ones are converted.
    for col in ("observed_at", "debriefed_at"):
        obs[col] = pd.to_datetime(obs[col], utc=True)
    return obs


def _observation_scores(
    session: Session, lo: datetime, hi: datetime, school_ids: list[int] | None
) -> dict[int, float]:
    """{observation id: mean of its numeric domain scores} for observations in the window."""
    stmt = (
        select(DomainScore.observation_id, func.avg(cast(DomainScore.score, Float)))
        .where(DomainScore.observed_at >= lo, DomainScore.observed_at < hi, DomainScore.score.is_not(None))
        .group_by(DomainScore.observation_id)
    )
    if school_ids is not None:
        stmt = stmt.where(DomainScore.school_id.in_(school_ids or [-1]))
    return {oid: float(avg) for oid, avg in session.exec(stmt).all()}


def _domain_names(session: Session) -> dict[str, str]:
    """{domain code: name in the most recent rubric version that has the code}."""
    rows = session.exec(
        select(Domain.code, Domain.name, RubricVersion.version).join(
            RubricVersion, RubricVersion.id == Domain.rubric_version_id
        )
    ).all()
    best: dict[str, tuple[int, str]] = {}
    for code, name, version in rows:
        if code not in best or version > best[code][0]:
            best[code] = (version, name)
    return {code: name for code, (_, name) in best.items()}


def _domain_means(
    session: Session, lo: datetime, hi: datetime, school_ids: list[int] | None
) -> dict[str, float]:
    stmt = (
        select(DomainScore.domain_code, func.avg(cast(DomainScore.score, Float)))
        .where(DomainScore.observed_at >= lo, DomainScore.observed_at < hi, DomainScore.score.is_not(None))
        .group_by(DomainScore.domain_code)
    )
    if school_ids is not None:
        stmt = stmt.where(DomainScore.school_id.in_(school_ids or [-1]))
    return {code: float(avg) for code, avg in session.exec(stmt).all()}


def _scored_sequence(obs: pd.DataFrame, scores: dict[int, float]) -> pd.DataFrame:
    """Scored observations with their score, in (observed_at, id) order."""
    if obs.empty:
        return obs.assign(score=pd.Series(dtype=float))
    scored = obs.assign(score=obs["id"].map(scores)).dropna(subset=["score"])
    return scored.sort_values(["observed_at", "id"], kind="mergesort")


def _spearman(a: pd.Series, b: pd.Series) -> float | None:
    # Rank with ties given the mean rank, then Pearson of the ranks (pandas' spearman).
    if len(a) < 2:
        return None
    value = a.rank(method="average").corr(b.rank(method="average"))
    return None if pd.isna(value) else float(value)


def _coverage(session: Session, end: date, hi: datetime, school_ids: list[int] | None) -> dict[str, Any]:
    settings = get_settings()
    teachers = select(Teacher.id).where(Teacher.active == True)  # noqa: E712
    if school_ids is not None:
        teachers = teachers.where(Teacher.school_id.in_(school_ids or [-1]))
    ids = list(session.exec(teachers).all())
    last = dict(
        session.exec(
            select(Observation.teacher_id, func.max(Observation.observed_at))
            .where(Observation.observed_at < hi, Observation.teacher_id.in_(ids or [-1]))
            .group_by(Observation.teacher_id)
        ).all()
    )
    due = overdue = 0
    for tid in ids:
        seen = last.get(tid)
        days = None if seen is None else (end - local_date(_utc(seen))).days
        if days is None or days >= settings.overdue_days:
            overdue += 1
        elif days >= settings.due_days:
            due += 1
    return {
        "as_of": end.isoformat(),
        "teachers": len(ids),
        "due": due,
        "overdue": overdue,
        "share_not_overdue": (len(ids) - overdue) / len(ids) if ids else None,
    }


def program_metrics(
    *,
    session: Session,
    start: date | None = None,
    end: date | None = None,
    school_ids: list[int] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Every program figure over school-local dates start..end inclusive (default: the most recent
    school year with observations), optionally narrowed to observations frozen at `school_ids`.
    Coverage is as of the window's end, or `today` (default: now) while the window is running."""
    start, end = _resolve_window(session, start, end)
    as_of = min(end, today or local_date(datetime.now(UTC)))
    lo, hi = local_day_bounds(start, end)
    obs = _observations(session, lo, hi, school_ids)
    scores = _observation_scores(session, lo, hi, school_ids)
    scored = _scored_sequence(obs, scores)

    teachers_observed = int(obs["teacher_id"].nunique()) if not obs.empty else 0
    obs_per_teacher = obs.groupby("teacher_id").size() if not obs.empty else pd.Series(dtype=int)

    # Start / end score: teachers with >= 2 scored observations, each weighted equally.
    start_score = end_score = gain = relative_gain = None
    if not scored.empty:
        by_teacher = scored.groupby("teacher_id", sort=True)["score"]
        firsts, lasts, counts = by_teacher.first(), by_teacher.last(), by_teacher.size()
        eligible = counts[counts >= 2].index
        if len(eligible):
            start_score = float(firsts.loc[eligible].mean())
            end_score = float(lasts.loc[eligible].mean())
            gain = end_score - start_score
            relative_gain = gain / start_score if start_score else None

    # Revisits in the window, with the teacher of the revisited step.
    rv_stmt = (
        select(Revisit.rating, ActionStep.teacher_id)
        .join(ActionStep, ActionStep.id == Revisit.step_id)
        .where(Revisit.revisited_at >= lo, Revisit.revisited_at < hi)
    )
    if school_ids is not None:
        rv_stmt = rv_stmt.join(Observation, Observation.id == Revisit.observation_id).where(
            Observation.school_id.in_(school_ids or [-1])
        )
    revisits = session.exec(rv_stmt).all()
    stick_rate = sum(1 for r, _ in revisits if r == "implemented") / len(revisits) if revisits else None
    revisited_teachers = {t for _, t in revisits}

    sustained_share = None
    if teachers_observed:
        sustained = [t for t, n in obs_per_teacher.items() if n >= 3 and t in revisited_teachers]
        sustained_share = len(sustained) / teachers_observed

    # Steps assigned in the window (school: the assigning observation's frozen school, else the teacher's).
    st_stmt = select(func.count(ActionStep.id)).where(
        ActionStep.assigned_at >= lo, ActionStep.assigned_at < hi
    )
    if school_ids is not None:
        st_stmt = (
            st_stmt.join(Teacher, Teacher.id == ActionStep.teacher_id)
            .outerjoin(Observation, Observation.id == ActionStep.observation_id)
            .where(func.coalesce(Observation.school_id, Teacher.school_id).in_(school_ids or [-1]))
        )
    action_steps = int(session.exec(st_stmt).one() or 0)
    steps_per_teacher = action_steps / teachers_observed if teachers_observed else None

    # Effort follows need: first scored observation's score vs number of observations (any).
    effort = None
    if not scored.empty:
        first = scored.groupby("teacher_id", sort=True)["score"].first()
        effort = _spearman(first, obs_per_teacher.reindex(first.index).astype(float))

    latency_median = within_share = None
    if not obs.empty:
        debriefed = obs.dropna(subset=["debriefed_at"])
        hours = (debriefed["debriefed_at"] - debriefed["observed_at"]).dt.total_seconds() / 3600
        if len(hours):
            latency_median = float(statistics.median(hours.tolist()))
        within_share = int((hours <= FEEDBACK_HOURS).sum()) / len(obs)

    by_code = _domain_means(session, lo, hi, school_ids)
    names = _domain_names(session)
    return {
        "window": {"from": start.isoformat(), "to": end.isoformat()},
        "observations": len(obs),
        "action_steps": action_steps,
        "teachers_observed": teachers_observed,
        "start_score": start_score,
        "end_score": end_score,
        "gain": gain,
        "relative_gain": relative_gain,
        "sustained_coaching_share": sustained_share,
        "steps_per_teacher": steps_per_teacher,
        "stick_rate": stick_rate,
        "effort_need_spearman": effort,
        "feedback_latency_median_h": latency_median,
        "feedback_within_48h_share": within_share,
        "domain_means": {names.get(code, code): mean for code, mean in sorted(by_code.items())},
        "domain_means_by_code": dict(sorted(by_code.items())),
        "coverage": _coverage(session, as_of, local_day_bounds(as_of, as_of)[1], school_ids),
    }


def metrics_by_school(
    *,
    session: Session,
    start: date | None = None,
    end: date | None = None,
    school_ids: list[int] | None = None,
) -> list[dict[str, Any]]:
    """One `program_metrics` per school (all, or those in `school_ids`), with school id and name."""
    start, end = _resolve_window(session, start, end)
    stmt = select(School).order_by(School.name)
    if school_ids is not None:
        stmt = stmt.where(School.id.in_(school_ids or [-1]))
    out = []
    for school in session.exec(stmt).all():
        figures = program_metrics(session=session, start=start, end=end, school_ids=[school.id])
        out.append({"school_id": school.id, "school": school.name, **figures})
    return out


def teacher_start_vs_effort(
    *, session: Session, start: date, end: date, school_ids: list[int] | None = None
) -> pd.DataFrame:
    """Per teacher with >= 1 scored observation in the window: first observation score and number of
    observations (the effort-follows-need scatter)."""
    lo, hi = local_day_bounds(start, end)
    obs = _observations(session, lo, hi, school_ids)
    scored = _scored_sequence(obs, _observation_scores(session, lo, hi, school_ids))
    if scored.empty:
        return pd.DataFrame({"teacher_id": [], "first_score": [], "observations": []})
    first = scored.groupby("teacher_id", sort=True)["score"].first()
    counts = obs.groupby("teacher_id").size().reindex(first.index)
    return pd.DataFrame(
        {"teacher_id": first.index.astype(int), "first_score": first.values, "observations": counts.values}
    ).reset_index(drop=True)
