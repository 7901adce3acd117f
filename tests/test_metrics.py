"""The program figures of DOMAIN.md on small hand-made data where every answer is known
(each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from coaching.metrics import (
    METRIC_KEYS,
    default_window,
    metrics_by_school,
    program_metrics,
    teacher_start_vs_effort,
)
from coaching.timeutil import school_year_of
from db.models import Domain, RubricVersion, Teacher
from tests import factories as f

YEAR = {"start": date(2025, 8, 1), "end": date(2026, 7, 31)}


def local(y: int, m: int, d: int, h: int = 10, minute: int = 0) -> datetime:
    """A naive school-local time (the factories read naive times in the school's timezone)."""
    return datetime(y, m, d, h, minute)


@pytest.fixture
def world(session):
    f.rubric(session)
    school = f.school(session, name="North")
    coach = f.user(session, "coach", schools=[school])
    return session, school, coach


def test_program_metrics_has_exactly_the_documented_keys(world):
    session, _, _ = world
    assert tuple(program_metrics(session=session, **YEAR)) == METRIC_KEYS


def test_start_and_end_scores_use_each_teachers_first_and_latest_scored_observation(world):
    session, school, coach = world
    t1, t2, t3 = (f.teacher(session, school, coach=coach) for _ in range(3))
    f.observation(session, t1, coach, local(2025, 9, 1), {"CR": 2, "SB": None, "EN": 3})  # 2.5
    f.observation(session, t1, coach, local(2025, 9, 15), {"CR": 3, "SB": 3})  # 3.0
    f.observation(session, t1, coach, local(2025, 10, 1), {"CR": 4, "EN": None})  # 4.0
    f.observation(session, t2, coach, local(2025, 9, 2), {"CR": 1, "SB": 2})  # 1.5
    f.observation(session, t2, coach, local(2025, 9, 20), {"CR": 2})  # 2.0
    f.observation(session, t2, coach, local(2025, 9, 25), {"CR": None})  # no score: never the latest
    # t3 has one scored observation only: not part of start/end.
    f.observation(session, t3, coach, local(2025, 9, 3), {"CR": 4})
    f.observation(session, t3, coach, local(2025, 9, 10), {"CR": None, "SB": None})

    m = program_metrics(session=session, **YEAR)

    assert m["start_score"] == pytest.approx(2.0)
    assert m["end_score"] == pytest.approx(3.0)
    assert m["gain"] == pytest.approx(1.0)
    assert m["relative_gain"] == pytest.approx(0.5)
    assert m["observations"] == 8
    assert m["teachers_observed"] == 3


def test_ties_in_observation_time_are_broken_by_observation_id(world):
    session, school, coach = world
    t1, t2 = f.teacher(session, school, coach=coach), f.teacher(session, school, coach=coach)
    same = local(2025, 10, 6, 9)
    f.observation(session, t1, coach, same, {"CR": 1})  # lower id: first
    f.observation(session, t1, coach, same, {"CR": 3})
    f.observation(session, t1, coach, local(2025, 11, 3), {"CR": 2})
    f.observation(session, t2, coach, same, {"CR": 2})  # lower id: first
    f.observation(session, t2, coach, same, {"CR": 4})  # higher id: latest

    m = program_metrics(session=session, **YEAR)

    assert m["start_score"] == pytest.approx((1 + 2) / 2)
    assert m["end_score"] == pytest.approx((2 + 4) / 2)


def test_domain_means_count_only_numeric_marks_and_use_the_latest_rubric_names(world):
    session, school, coach = world
    t = f.teacher(session, school, coach=coach)
    f.observation(session, t, coach, local(2025, 9, 1), {"CR": 1, "SB": 4, "RI": None})
    f.observation(session, t, coach, local(2025, 9, 8), {"CR": 2, "SB": None, "RI": 3})
    f.observation(session, t, coach, local(2025, 9, 15), {"CR": None, "SB": 2, "RI": None})
    # A newer rubric version renames CR; the figure is keyed by the newest name.
    v2 = RubricVersion(version=2, name="Rubric v2", is_current=False)
    session.add(v2)
    session.flush()
    session.add(Domain(rubric_version_id=v2.id, code="CR", name="Classroom Culture"))
    session.commit()

    m = program_metrics(session=session, **YEAR)

    assert m["domain_means_by_code"] == pytest.approx({"CR": 1.5, "SB": 3.0, "RI": 3.0})
    assert m["domain_means"] == pytest.approx(
        {"Classroom Culture": 1.5, "Safety & Behavior": 3.0, "Reading Intervention": 3.0}
    )


def test_window_bounds_are_inclusive_school_local_dates(world):
    session, school, coach = world
    t = f.teacher(session, school, coach=coach)
    f.observation(session, t, coach, local(2025, 8, 31, 23, 59), {"CR": 1})  # the day before: out
    f.observation(session, t, coach, local(2025, 9, 1, 0, 0), {"CR": 2})  # first local minute: in
    f.observation(
        session, t, coach, local(2025, 9, 30, 23, 59), {"CR": 4}
    )  # last local minute: in (UTC: Oct 1)
    f.observation(session, t, coach, local(2025, 10, 1, 0, 0), {"CR": 1})  # the day after: out

    m = program_metrics(session=session, start=date(2025, 9, 1), end=date(2025, 9, 30))

    assert m["window"] == {"from": "2025-09-01", "to": "2025-09-30"}
    assert m["observations"] == 2
    assert m["domain_means_by_code"] == {"CR": pytest.approx(3.0)}
    assert (m["start_score"], m["end_score"]) == (pytest.approx(2.0), pytest.approx(4.0))


def test_sustained_coaching_needs_three_observations_and_a_revisit_in_the_window(world):
    session, school, coach = world
    ta, tb, tc, td = (f.teacher(session, school, coach=coach) for _ in range(4))
    # ta: 3 observations and a revisit -> sustained coaching
    a1 = f.observation(session, ta, coach, local(2025, 9, 1), {"CR": 2})
    a2 = f.observation(session, ta, coach, local(2025, 9, 15), {})  # unscored still counts
    f.observation(session, ta, coach, local(2025, 9, 29), {"CR": 3})
    f.revisit(session, f.step(session, a1), a2, "not_yet")
    # tb: 3 observations, no revisit
    for day in (2, 16, 30):
        f.observation(session, tb, coach, local(2025, 9, day), {"CR": 2})
    # tc: a revisit but only 2 observations
    c1 = f.observation(session, tc, coach, local(2025, 9, 3), {"CR": 2})
    c2 = f.observation(session, tc, coach, local(2025, 9, 17), {"CR": 2})
    f.revisit(session, f.step(session, c1), c2, "implemented")
    # td: 3 observations in the window, the revisit after it
    d1 = f.observation(session, td, coach, local(2025, 9, 4), {"CR": 2})
    f.observation(session, td, coach, local(2025, 9, 18), {"CR": 2})
    f.observation(session, td, coach, local(2025, 9, 25), {"CR": 2})
    d4 = f.observation(session, td, coach, local(2025, 10, 9), {"CR": 2})
    f.revisit(session, f.step(session, d1), d4, "implemented")

    m = program_metrics(session=session, start=date(2025, 9, 1), end=date(2025, 9, 30))

    assert m["teachers_observed"] == 4
    assert m["sustained_coaching_share"] == pytest.approx(1 / 4)


def test_steps_per_teacher_is_steps_assigned_in_the_window_over_teachers_observed(world):
    session, school, coach = world
    ta, tb = f.teacher(session, school, coach=coach), f.teacher(session, school, coach=coach)
    a1 = f.observation(session, ta, coach, local(2025, 9, 1), {"CR": 2})
    for title in ("One", "Two", "Three"):
        f.step(session, a1, title)
    before = f.observation(session, tb, coach, local(2025, 7, 20), {"CR": 2})  # previous school year
    f.step(session, before)
    b1 = f.observation(session, tb, coach, local(2025, 9, 2), {"CR": 2})
    f.step(session, b1)
    f.teacher(session, school, coach=coach)  # never observed: not in the denominator

    m = program_metrics(session=session, **YEAR)

    assert m["action_steps"] == 4
    assert m["teachers_observed"] == 2
    assert m["steps_per_teacher"] == pytest.approx(2.0)


def test_stick_rate_is_the_implemented_share_of_revisits_in_the_window(world):
    session, school, coach = world
    t = f.teacher(session, school, coach=coach)
    o1 = f.observation(session, t, coach, local(2025, 9, 1), {"CR": 2})
    steps = [f.step(session, o1, f"Step {i}") for i in range(5)]
    o2 = f.observation(session, t, coach, local(2025, 9, 15), {"CR": 2})
    for st, rating in zip(steps[:4], ["implemented", "partial", "not_yet", "implemented"], strict=True):
        f.revisit(session, st, o2, rating)
    late = f.observation(session, t, coach, local(2025, 10, 6), {"CR": 2})
    f.revisit(session, steps[4], late, "implemented")  # outside the window below

    m = program_metrics(session=session, start=date(2025, 9, 1), end=date(2025, 9, 30))

    assert m["stick_rate"] == pytest.approx(0.5)


def test_effort_follows_need_is_spearman_with_mean_ranks_for_ties(world):
    session, school, coach = world
    t1, t2, t3, t4, t5 = (f.teacher(session, school, coach=coach) for _ in range(5))
    # first scores 1, 2, 2, 3 with 2, 3, 1, 1 observations: ranks (1, 2.5, 2.5, 4) vs (3, 4, 1.5, 1.5)
    f.observation(session, t1, coach, local(2025, 9, 1), {"CR": 1})
    f.observation(session, t1, coach, local(2025, 9, 15), {"CR": 3})
    f.observation(session, t2, coach, local(2025, 9, 2), {"CR": 2})
    f.observation(session, t2, coach, local(2025, 9, 16), {"CR": None})  # unscored, still counted
    f.observation(session, t2, coach, local(2025, 9, 30), {"CR": 4})
    f.observation(session, t3, coach, local(2025, 9, 3), {"CR": 2})
    f.observation(session, t4, coach, local(2025, 9, 4), {"CR": 3})
    for day in (5, 12, 19, 26):  # never scored: not part of the correlation
        f.observation(session, t5, coach, local(2025, 9, day), {"CR": None})

    m = program_metrics(session=session, **YEAR)
    frame = teacher_start_vs_effort(session=session, **YEAR)

    assert m["effort_need_spearman"] == pytest.approx(-0.5)
    assert sorted(zip(frame["first_score"], frame["observations"], strict=True)) == [
        (1, 2),
        (2, 1),
        (2, 3),
        (3, 1),
    ]
    assert set(frame.columns) == {"teacher_id", "first_score", "observations"}


def test_feedback_latency_median_is_over_debriefs_and_a_missing_debrief_counts_as_late(world):
    session, school, coach = world
    t = f.teacher(session, school, coach=coach)
    for day, hours in ((1, 10), (8, 30), (15, 50), (22, None)):
        f.observation(session, t, coach, local(2025, 9, day), {"CR": 2}, debriefed_after_h=hours)

    m = program_metrics(session=session, **YEAR)

    assert m["feedback_latency_median_h"] == pytest.approx(30.0)
    assert m["feedback_within_48h_share"] == pytest.approx(2 / 4)


def test_an_empty_window_gives_zero_counts_and_no_figures(world):
    session, _, _ = world
    m = program_metrics(session=session, **YEAR)
    assert (m["observations"], m["action_steps"], m["teachers_observed"]) == (0, 0, 0)
    for key in (
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
    ):
        assert m[key] is None, key
    assert m["domain_means"] == {}


def test_the_school_filter_uses_the_school_frozen_on_each_observation(world):
    session, north, coach = world
    south = f.school(session, name="South")
    t = f.teacher(session, north, coach=coach)
    f.observation(session, t, coach, local(2025, 9, 1), {"CR": 1})
    t.school_id = south.id  # the teacher moves; history stays at North
    session.add(t)
    session.commit()
    f.observation(session, session.get(Teacher, t.id), coach, local(2025, 10, 1), {"CR": 3})

    at_north = program_metrics(session=session, school_ids=[north.id], **YEAR)
    at_south = program_metrics(session=session, school_ids=[south.id], **YEAR)
    per_school = {row["school"]: row["observations"] for row in metrics_by_school(session=session, **YEAR)}

    assert at_north["observations"] == 1 and at_north["domain_means_by_code"] == {"CR": 1.0}
    assert at_south["observations"] == 1 and at_south["domain_means_by_code"] == {"CR": 3.0}
    assert program_metrics(session=session, school_ids=[], **YEAR)["observations"] == 0
    assert per_school == {"North": 1, "South": 1}


def test_the_default_window_is_the_latest_school_year_with_observations(world):
    session, school, coach = world
    assert default_window(session=session) == school_year_of(date.today())
    t = f.teacher(session, school, coach=coach)
    f.observation(session, t, coach, local(2024, 10, 1), {"CR": 1})
    f.observation(session, t, coach, local(2025, 9, 1), {"CR": 3})

    assert default_window(session=session) == (date(2025, 8, 1), date(2026, 7, 31))
    m = program_metrics(session=session)
    assert m["window"] == {"from": "2025-08-01", "to": "2026-07-31"}
    assert m["observations"] == 1


def test_coverage_counts_teachers_due_and_overdue_as_of_the_window_end(world):
    session, school, coach = world
    end = date(2025, 12, 31)
    recent, due, overdue, never = (f.teacher(session, school, coach=coach) for _ in range(4))
    for teacher, days_ago in ((recent, 10), (due, 20), (overdue, 30)):
        when = datetime.combine(end - timedelta(days=days_ago), datetime.min.time()).replace(hour=10)
        f.observation(session, teacher, coach, when, {"CR": 2})
    _ = never

    cov = program_metrics(session=session, start=date(2025, 8, 1), end=end)["coverage"]

    assert cov == {"as_of": "2025-12-31", "teachers": 4, "due": 1, "overdue": 2, "share_not_overdue": 0.5}


def test_coverage_of_a_running_school_year_is_as_of_today_not_the_years_end(world):
    session, school, coach = world
    today = date(2025, 11, 20)
    seen, never = f.teacher(session, school, coach=coach), f.teacher(session, school, coach=coach)
    f.observation(session, seen, coach, local(2025, 11, 17), {"CR": 2})
    _ = never

    cov = program_metrics(session=session, start=YEAR["start"], end=YEAR["end"], today=today)["coverage"]

    # As of 2026-07-31 the teacher seen on 17 November would count as overdue.
    assert cov == {"as_of": "2025-11-20", "teachers": 2, "due": 0, "overdue": 1, "share_not_overdue": 0.5}

