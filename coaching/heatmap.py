"""Domain heatmaps: mean rubric score by a chosen row dimension x domain, aggregated in SQL.

Every aggregate is ONE `GROUP BY <row column>, domain_code` over `domain_score`, whose rows carry
the observation's dimensions frozen at save time, so the covering indexes (dimension, domain_code,
month, score) answer it without touching the table. Labels are joined afterwards from the small
tables (schools, teachers, blocks, users).
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from sqlalchemy import and_, func, or_
from sqlmodel import Session, select

from coaching import access, timeutil
from coaching.errors import PermissionDenied, ValidationError
from db.models import Block, Domain, DomainScore, Observation, RubricVersion, School, Teacher, User

# Row dimension -> the frozen column on domain_score it groups by.
DIMENSIONS: dict[str, str] = {
    "school": "school_id",
    "grade": "grade_band",
    "teacher": "teacher_id",
    "block": "block_id",
    "coach": "observer_id",
    "month": "month",
}
DIMENSION_LABELS = {
    "school": "School",
    "grade": "Grade band",
    "teacher": "Teacher",
    "block": "Instructional block",
    "coach": "Coach",
    "month": "Month",
}
CELL_COLUMNS = ["row_key", "row_label", "domain_code", "domain_name", "mean", "n_obs", "n_scores"]
VIEW_ROLES = ("admin", "leader", "coach")


@dataclass
class HeatmapFilters:
    """Which scores a heatmap is built from; None means no restriction. Dates are school-local, inclusive."""

    start: date | None = None
    end: date | None = None
    school_ids: list[int] | None = None
    grade_bands: list[str] | None = None
    block_ids: list[int] | None = None
    rubric_version_ids: list[int] | None = field(default=None)


def _column(rows: str):
    if rows not in DIMENSIONS:
        raise ValidationError(f"Rows must be one of: {', '.join(sorted(DIMENSIONS))}.", field="rows")
    return getattr(DomainScore, DIMENSIONS[rows])


def _window_conditions(filters: HeatmapFilters) -> list:
    """Conditions on domain_score for the school-local date window (inclusive).

    `month` is the school-local YYYY-MM frozen on each score, and the covering indexes carry it (not
    the timestamp). Rows in months wholly inside the window are decided by `month` alone; only rows
    in a partly covered first or last month look at `observed_at` (SQLite reads the table row only
    when the OR needs it). The default window, a school year, is whole months: index only.
    """
    start, end = filters.start, filters.end
    if start and end and start > end:
        raise ValidationError("The window's start is after its end.", field="start")
    conds = []
    if start:
        first = start.strftime("%Y-%m")
        conds.append(DomainScore.month >= first)
        if start.day != 1:
            lo, _ = timeutil.local_day_bounds(start, start)
            conds.append(or_(DomainScore.month > first, DomainScore.observed_at >= lo))
    if end:
        last = end.strftime("%Y-%m")
        conds.append(DomainScore.month <= last)
        if end.day != calendar.monthrange(end.year, end.month)[1]:
            _, hi = timeutil.local_day_bounds(end, end)
            conds.append(or_(DomainScore.month < last, DomainScore.observed_at < hi))
    return conds


def _scope_conditions(session: Session, user: User, rows: str) -> list:
    """Role scope on domain_score rows: leaders and coaches see their schools' aggregates; a coach's
    rows by teacher are only the teachers the coach may see."""
    if user is None or not user.active:
        raise PermissionDenied("Please sign in.")
    if user.role not in VIEW_ROLES:
        raise PermissionDenied("The heatmap is for coaches and school leaders.")
    conds = []
    schools = access.school_ids(session, user)
    if schools is not None:
        conds.append(DomainScore.school_id.in_(schools or [-1]))
    if user.role == "coach" and rows == "teacher":
        visible = select(Teacher.id).where(access.teacher_clause(session, user))
        conds.append(DomainScore.teacher_id.in_(visible))
    return conds


def _filter_conditions(filters: HeatmapFilters) -> list:
    conds = _window_conditions(filters)
    if filters.school_ids is not None:
        conds.append(DomainScore.school_id.in_(list(filters.school_ids) or [-1]))
    if filters.grade_bands is not None:
        conds.append(DomainScore.grade_band.in_(list(filters.grade_bands) or ["\x00"]))
    if filters.block_ids is not None:
        conds.append(DomainScore.block_id.in_(list(filters.block_ids) or [-1]))
    if filters.rubric_version_ids is not None:
        conds.append(DomainScore.rubric_version_id.in_(list(filters.rubric_version_ids) or [-1]))
    return conds


def domain_catalogue(*, session: Session) -> list[tuple[str, str]]:
    """Every domain code ever used, as (code, name): the name from the newest rubric version having
    the code; current domains first in rubric order, codes only found in older versions after them."""
    rows = session.exec(
        select(Domain.code, Domain.name, Domain.position, RubricVersion.version)
        .join(RubricVersion, RubricVersion.id == Domain.rubric_version_id)
        .order_by(Domain.code, RubricVersion.version.desc())
    ).all()
    newest: dict[str, tuple] = {}
    for code, name, position, version in rows:
        newest.setdefault(code, (-version, position, code, name))
    return [(code, name) for _, _, code, name in sorted(newest.values())]


def _labels(session: Session, rows: str, keys: list) -> dict:
    """Display labels for row keys, read from the small tables."""
    if rows in ("grade", "month"):
        return {k: str(k) for k in keys}
    if not keys:
        return {}
    model, label = {
        "school": (School, School.name),
        "teacher": (Teacher, Teacher.name),
        "block": (Block, Block.name),
        "coach": (User, User.display_name),
    }[rows]
    found = dict(session.exec(select(model.id, label).where(model.id.in_(keys))).all())
    labels = {k: found.get(k, f"#{k}") for k in keys}
    # Two teachers with one name must stay two rows: the chart keys its rows by label.
    counts = Counter(labels.values())
    return {k: (f"{v} (#{k})" if counts[v] > 1 else v) for k, v in labels.items()}


def _row_order(session: Session, rows: str, labels: dict) -> dict:
    """Sort position of each row key: blocks in their configured order, months in time, others by label."""
    if rows == "block" and labels:
        pos = dict(session.exec(select(Block.id, Block.position).where(Block.id.in_(list(labels)))).all())
        ordered = sorted(labels, key=lambda k: (pos.get(k, 0), labels[k]))
    elif rows == "month":
        ordered = sorted(labels)
    else:
        ordered = sorted(labels, key=lambda k: (labels[k].casefold(), str(k)))
    return {k: i for i, k in enumerate(ordered)}


def heatmap_cells(*, session: Session, user: User, rows: str, filters: HeatmapFilters) -> pd.DataFrame:
    """Mean numeric score and counts per (row, domain) cell, scoped to what `user` may see.

    n_obs is the number of observations with a numeric score in the cell; because an observation has
    at most one mark per domain (unique observation_id, domain_code) it equals n_scores.
    """
    col = _column(rows)
    conds = [
        DomainScore.score.is_not(None),
        *_scope_conditions(session, user, rows),
        *_filter_conditions(filters),
    ]
    stmt = (
        select(col, DomainScore.domain_code, func.sum(DomainScore.score), func.count(DomainScore.score))
        .where(and_(*conds))
        .group_by(col, DomainScore.domain_code)
    )
    raw = session.exec(stmt).all()
    # The result is at most a few thousand cells: plain Python is faster here than pandas.
    labels = _labels(session, rows, sorted({r[0] for r in raw}))
    order = _row_order(session, rows, labels)
    catalogue = domain_catalogue(session=session)
    dom_pos = {code: i for i, (code, _) in enumerate(catalogue)}
    names = dict(catalogue)
    cells = [
        (key, labels[key], code, names.get(code, code), float(total) / n, n, n) for key, code, total, n in raw
    ]
    cells.sort(key=lambda c: (order[c[0]], dom_pos.get(c[2], len(dom_pos)), c[2]))
    return pd.DataFrame(cells, columns=CELL_COLUMNS)


@dataclass(frozen=True)
class CellChoices:
    """The cells a viewer may open below the chart, in chart order."""

    labels: dict[tuple, str]  # (row_key, domain_code) -> "row label · domain name"
    at_point: dict[tuple[str, str], tuple]  # a click's (row_label, domain_name) -> (row_key, domain_code)
    hidden: int  # cells suppressed in meeting mode: on the chart as 'n<3', never openable


def cell_choices(cells: pd.DataFrame) -> CellChoices:
    """The cells whose observations may be listed: every cell, except those meeting mode suppresses
    (their list would show the few scores, dates and ids the chart hides)."""
    if "suppressed" in cells.columns:
        suppressed = cells["suppressed"].astype(bool)
    else:
        suppressed = pd.Series(False, index=cells.index)
    shown = cells[~suppressed]
    keys = list(zip(shown["row_key"], shown["domain_code"], strict=True))
    labels = dict(zip(keys, shown["row_label"] + " · " + shown["domain_name"], strict=True))
    at_point = dict(zip(zip(shown["row_label"], shown["domain_name"], strict=True), keys, strict=True))
    return CellChoices(labels=labels, at_point=at_point, hidden=int(suppressed.sum()))


def cell_observations(
    *, session: Session, user: User, rows: str, row_key, domain_code: str, filters: HeatmapFilters
) -> pd.DataFrame:
    """The observations behind one cell (id, date, teacher, observer, block, score), limited to those
    the user may see. No note text: the heatmap is a wall display."""
    col = _column(rows)
    conds = [
        DomainScore.score.is_not(None),
        DomainScore.domain_code == domain_code,
        col == row_key,
        *_scope_conditions(session, user, rows),
        *_filter_conditions(filters),
        access.observation_clause(session, user),
    ]
    stmt = (
        select(
            Observation.id,
            Observation.observed_at,
            Teacher.id,
            Teacher.name,
            User.id,
            User.display_name,
            Block.name,
            DomainScore.score,
        )
        .join(Observation, Observation.id == DomainScore.observation_id)
        .join(Teacher, Teacher.id == Observation.teacher_id)
        .join(User, User.id == Observation.observer_id)
        .join(Block, Block.id == Observation.block_id)
        .where(and_(*conds))
        .order_by(Observation.observed_at.desc(), Observation.id.desc())
    )
    out = pd.DataFrame(
        session.exec(stmt).all(),
        columns=["id", "observed_at", "teacher_id", "teacher", "observer_id", "observer", "block", "score"],
    )
    out.insert(1, "date", [timeutil.local_date(t) for t in out["observed_at"]])
    return out.drop(columns=["observed_at"])


def monthly_trend(*, session: Session, user: User, filters: HeatmapFilters) -> pd.DataFrame:
    """Each domain's mean per school-local month (month, domain_code, domain_name, mean, n_obs)."""
    cells = heatmap_cells(session=session, user=user, rows="month", filters=filters)
    trend = cells.rename(columns={"row_key": "month"})[
        ["month", "domain_code", "domain_name", "mean", "n_obs"]
    ]
    return trend.sort_values(["month"], kind="stable").reset_index(drop=True)


def filter_options(*, session: Session, user: User) -> dict:
    """Choices for the heatmap filters, limited to the user's schools."""
    _scope_conditions(session, user, "school")
    scope = access.school_ids(session, user)
    schools = select(School.id, School.name).order_by(School.name)
    if scope is not None:
        schools = schools.where(School.id.in_(scope or [-1]))
    grades = select(Teacher.grade_band).distinct().order_by(Teacher.grade_band)
    if scope is not None:
        grades = grades.where(Teacher.school_id.in_(scope or [-1]))
    return {
        "schools": dict(session.exec(schools).all()),
        "grade_bands": list(session.exec(grades).all()),
        "blocks": dict(session.exec(select(Block.id, Block.name).order_by(Block.position)).all()),
        "rubric_versions": {
            rv.id: f"v{rv.version} {rv.name}"
            for rv in session.exec(select(RubricVersion).order_by(RubricVersion.version.desc()))
        },
    }
