"""The demo school year reproduces the pilot figures of DOMAIN.md, on SQLite and PostgreSQL, and
seeding is deterministic and idempotent."""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, SQLModel, func, select

from coaching.lifecycle import RevisitFact, replay
from coaching.metrics import program_metrics
from coaching.timeutil import local_date
from coaching.users import check_password
from db.engine import build_engine
from db.migrate import upgrade
from db.models import (
    ActionStep,
    AppSetting,
    DomainScore,
    Observation,
    Revisit,
    School,
    StepEvent,
    Teacher,
    User,
)
from seeds.demo import DEMO_KEY, DEMO_PASSWORD, STUDENTS, seed_demo, seed_demo_if_empty

NOW = datetime(2026, 11, 23, tzinfo=UTC)
_n = itertools.count()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _counts(session: Session) -> dict[str, int]:
    return {
        t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
        for t in SQLModel.metadata.sorted_tables
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(request, tmp_path_factory):
    """One demo database per backend for the whole module (seeding takes a few seconds)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('demo')}/demo.db"
    else:
        url = request.getfixturevalue("pg_server").create_database(f"demo_{os.getpid()}_{next(_n)}")
    engine = build_engine(url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        result = seed_demo(session=session)
        yield session, result, program_metrics(session=session)
    engine.dispose()


def test_the_demo_has_four_schools_about_1900_students_and_150ish_teachers(demo):
    session, result, _ = demo
    schools = session.exec(select(School)).all()
    assert result.created
    assert len(schools) == 4
    assert 1850 <= sum(s.enrolment for s in schools) <= 1950
    teachers = session.exec(select(Teacher)).all()
    assert 145 <= len(teachers) <= 165
    assert all(t.grade_band and t.subject and t.coach_id for t in teachers)


def test_the_demo_has_exactly_1781_observations_and_2185_action_steps(demo):
    session, _, m = demo
    assert session.exec(select(func.count(Observation.id))).one() == 1781
    assert session.exec(select(func.count(ActionStep.id))).one() == 2185
    assert (m["observations"], m["action_steps"]) == (1781, 2185)
    assert m["window"] == {"from": "2025-08-01", "to": "2026-07-31"}


def test_the_demo_reproduces_the_pilot_scores(demo):
    _, _, m = demo
    assert m["start_score"] == pytest.approx(2.29, abs=0.05)
    assert m["end_score"] == pytest.approx(2.73, abs=0.05)
    assert m["gain"] > 0.35
    assert 145 <= m["teachers_observed"] <= 165


@pytest.mark.parametrize(
    "domain, mean",
    [
        ("Reading Intervention", 2.98),
        ("Small Group", 2.77),
        ("Culture & Routines", 2.26),
        ("Safety & Behavior", 1.68),
    ],
)
def test_the_demo_reproduces_the_named_domain_means(demo, domain, mean):
    _, _, m = demo
    assert m["domain_means"][domain] == pytest.approx(mean, abs=0.10)
    assert all(1.0 <= v <= 4.0 for v in m["domain_means"].values())
    assert len(m["domain_means"]) == 8


def test_the_demo_reproduces_the_coaching_figures(demo):
    _, _, m = demo
    assert m["sustained_coaching_share"] == pytest.approx(0.92, abs=0.03)
    assert m["effort_need_spearman"] < 0
    assert 0.55 <= m["stick_rate"] <= 0.65
    assert m["feedback_within_48h_share"] >= 0.80
    assert m["steps_per_teacher"] == pytest.approx(14, abs=1)


def test_demo_dates_fall_in_the_2025_26_school_year_and_never_in_the_future(demo):
    session, _, _ = demo
    lo, hi = session.exec(select(func.min(Observation.observed_at), func.max(Observation.observed_at))).one()
    assert date(2025, 8, 1) <= local_date(_utc(lo)) and local_date(_utc(hi)) <= date(2026, 6, 30)
    latest_debrief = session.exec(select(func.max(Observation.debriefed_at))).one()
    assert _utc(latest_debrief) < NOW
    assert _utc(session.exec(select(func.max(Revisit.revisited_at))).one()) < NOW


def test_demo_steps_reach_every_state_and_revisits_every_rating(demo):
    session, _, _ = demo
    states = set(session.exec(select(ActionStep.state)).all())
    ratings = set(session.exec(select(Revisit.rating)).all())
    assert states == {"open", "mastered", "sustained", "dropped"}
    assert ratings == {"not_yet", "partial", "implemented"}
    assert session.exec(select(func.count(StepEvent.id))).one() > 0


def test_demo_step_states_are_the_replay_of_their_revisits(demo):
    session, _, _ = demo
    revisits = defaultdict(list)
    for step_id, obs_id, rating, at in session.exec(
        select(Revisit.step_id, Revisit.observation_id, Revisit.rating, Revisit.revisited_at)
    ):
        revisits[step_id].append(RevisitFact(at=_utc(at), observation_id=obs_id, rating=rating))
    for st in session.exec(select(ActionStep)).all():
        result = replay(revisits[st.id], _utc(st.dropped_at))
        assert (st.state, _utc(st.mastered_at), _utc(st.sustained_at)) == (
            result.state,
            result.mastered_at,
            result.sustained_at,
        ), st.id


def test_demo_never_has_more_than_three_open_steps_when_a_step_is_assigned(demo):
    session, _, _ = demo
    revisits = defaultdict(list)
    for step_id, obs_id, rating, at in session.exec(
        select(Revisit.step_id, Revisit.observation_id, Revisit.rating, Revisit.revisited_at)
    ):
        revisits[step_id].append(RevisitFact(at=_utc(at), observation_id=obs_id, rating=rating))
    steps_of = defaultdict(list)
    for st in session.exec(select(ActionStep)).all():
        steps_of[st.teacher_id].append(st)
    for steps in steps_of.values():
        for when in sorted({_utc(s.assigned_at) for s in steps}):
            open_now = 0
            for s in steps:
                if _utc(s.assigned_at) > when:
                    continue
                dropped = _utc(s.dropped_at)
                state = replay(
                    [r for r in revisits[s.id] if r.at <= when],
                    dropped if dropped is not None and dropped <= when else None,
                ).state
                open_now += state == "open"
            assert open_now <= 3


def test_demo_scores_carry_the_observations_frozen_dimensions(demo):
    session, _, _ = demo
    mismatched = session.exec(
        select(func.count(DomainScore.id))
        .join(Observation, Observation.id == DomainScore.observation_id)
        .where(
            (DomainScore.teacher_id != Observation.teacher_id)
            | (DomainScore.school_id != Observation.school_id)
            | (DomainScore.observer_id != Observation.observer_id)
            | (DomainScore.block_id != Observation.block_id)
            | (DomainScore.observed_at != Observation.observed_at)
        )
    ).one()
    assert mismatched == 0
    assert session.exec(select(func.count(DomainScore.id)).where(DomainScore.score.is_(None))).one() > 0


def test_demo_accounts_are_marked_demo_and_use_the_documented_password(demo):
    session, result, _ = demo
    users = {u.username: u for u in session.exec(select(User)).all()}
    assert {"demo-admin", "demo-leader", "demo-coach1", "demo-teacher1"} <= set(users)
    assert all(u.is_demo and u.display_name.endswith(" (demo)") for u in users.values())
    roles = [u.role for u in users.values()]
    assert roles.count("admin") == 1 and roles.count("leader") == 1 and roles.count("teacher") == 3
    assert roles.count("coach") >= 4
    assert check_password(DEMO_PASSWORD, users["demo-leader"].password_hash)
    assert len({u.password_hash for u in users.values()}) == 1  # hashed once
    linked = session.exec(select(func.count(Teacher.id)).where(Teacher.user_id.is_not(None))).one()
    assert linked == 3
    assert {a[0] for a in result.accounts} == set(users)


def test_demo_notes_mention_fictional_students(demo):
    session, _, _ = demo
    notes = session.exec(select(Observation.notes)).all()
    assert sum(any(name in n for name in STUDENTS) for n in notes) > 100


def test_seeding_the_demo_again_changes_nothing(demo):
    session, _, _ = demo
    before = _counts(session)
    result = seed_demo(session=session)
    assert not result.created
    assert not seed_demo_if_empty(session=session)
    assert _counts(session) == before


def _fingerprint(session: Session):
    obs = session.exec(select(Observation.teacher_id, Observation.observed_at).order_by(Observation.id)).all()
    scores = session.exec(select(func.sum(DomainScore.score))).one()
    states = session.exec(select(ActionStep.state).order_by(ActionStep.id)).all()
    return [(t, _utc(a)) for t, a in obs], scores, states


def test_demo_reset_deletes_everything_and_seeds_the_same_demo_again(session):
    assert seed_demo_if_empty(session=session)
    first = _fingerprint(session)
    session.add(School(code="EXTRA", name="Not part of the demo"))
    session.commit()

    result = seed_demo(session=session, reset=True)

    assert result.created
    assert session.exec(select(School).where(School.code == "EXTRA")).first() is None
    assert session.get(AppSetting, DEMO_KEY) is not None
    assert _fingerprint(session) == first
    # PostgreSQL sequences were moved past the explicit ids: ordinary inserts still work.
    session.add(School(code="NEW", name="New school"))
    session.commit()
