"""The teacher's own page and the observation page under AppTest (SQLite)."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, delete, select
from streamlit.testing.v1 import AppTest

from coaching.observations import local_text, log_debrief, record_observation
from db.engine import get_engine
from db.models import Observation, StepEvent
from tests._observe_helpers import assign, days_ago, draft, world
from tests._page_helpers import APP, observation_page, open_page


@pytest.fixture
def w(sqlite_session):
    return world(sqlite_session)


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [str(d.value.to_dict()) for d in at.dataframe]
    parts += [str(o) for sb in at.selectbox for o in sb.options]
    return "\n".join(parts)


@pytest.fixture
def records(w, sqlite_session):
    s = sqlite_session
    (step,) = assign(s, w.coach, w.teacher.id, days_ago(20), "Wait three seconds", notes="Mine: calm start")
    mine = record_observation(
        session=s,
        draft=draft(
            w.teacher.id,
            days_ago(5),
            evidence={"CR": "Entry under a minute"},
            revisits={step.id: "implemented"},
        ),
        by=w.coach,
    )
    log_debrief(
        session=s, observation_id=mine.id, debriefed_at=days_ago(4), notes="Talked about entry", by=w.coach
    )
    theirs = record_observation(
        session=s,
        draft=draft(
            w.other_teacher.id, days_ago(3), notes="SECRET other notes", evidence={"CR": "other evidence"}
        ),
        by=w.other_coach,
    )
    s.commit()
    return {"mine": mine.id, "theirs": theirs.id, "step": step.id}


def test_a_teacher_sees_their_scores_evidence_debrief_and_steps_with_history(w, records):
    at = open_page(w.teacher_login.id, "app_pages/my_coaching.py")
    text = _text(at)
    assert "Entry under a minute" in text
    assert "Talked about entry" in text
    assert "Wait three seconds · mastered" in [e.label for e in at.expander]
    assert "open -> mastered" in text


def test_a_teacher_sees_nothing_of_other_teachers(w, records):
    at = open_page(w.teacher_login.id, "app_pages/my_coaching.py")
    assert len(at.selectbox(key="my_obs").options) == 2  # two own observations, not the third
    text = ""
    with Session(get_engine()) as s:
        own = s.exec(select(Observation.id).where(Observation.teacher_id == w.teacher.id)).all()
    for oid in own:
        at.selectbox(key="my_obs").set_value(oid).run()
        assert not at.exception
        text += _text(at)
    assert "Oscar Elsewhere" not in text and "SECRET" not in text and "other evidence" not in text
    assert "Olive Other" not in text


def test_a_teacher_acknowledges_with_a_reflection_and_downloads_a_summary(w, records):
    at = open_page(w.teacher_login.id, "app_pages/my_coaching.py")
    summary = at.get("download_button")[0]
    assert summary.proto.label == "Download one-page summary"
    at.text_area[0].input("I will time the entry routine.")
    at.button[0].click().run()
    assert not at.exception
    with Session(get_engine()) as s:
        acked = s.exec(select(Observation).where(Observation.acknowledged_at != None)).all()  # noqa: E711
        assert [o.reflection for o in acked] == ["I will time the entry routine."]


def test_the_teacher_cannot_open_coach_pages(w):
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = w.teacher_login.id
    at.run()
    for page in ("app_pages/observe.py", "app_pages/caseload.py", "app_pages/observation.py"):
        with pytest.raises(ValueError):
            at.switch_page(page)


def test_the_observation_page_logs_a_debrief_and_sets_a_goal(w, records):
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = w.coach.id
    at.run()
    at.switch_page("app_pages/observation.py")
    at.query_params["id"] = str(records["mine"])
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="observation_pick").value == records["mine"]
    next(t for t in at.text_input if t.label == "New goal").input("Calm, fast starts")
    next(b for b in at.button if b.label == "Set goal").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("Goal set" in s.value for s in at.success)
    assert "Calm, fast starts" in _text(at)


def test_the_caseload_page_lists_the_most_urgent_first_and_opens_observe(w, sqlite_session):
    record_observation(session=sqlite_session, draft=draft(w.teacher.id, days_ago(2)), by=w.coach)
    from tests import factories

    never = factories.teacher(sqlite_session, w.school, coach=w.coach, name="Never Seen")
    at = open_page(w.coach.id, "app_pages/caseload.py")
    table = at.dataframe[0].value
    assert list(table["teacher"]) == ["Never Seen", "Tess Teacher"]
    assert list(table["status"]) == ["overdue", "ok"]
    assert at.selectbox(key="caseload_pick").value == never.id  # the most urgent is preselected
    at.button(key="caseload_observe").click().run()  # one click: the observe form opens for them
    assert not at.exception
    assert at.title[0].value == "Observe"
    assert at.selectbox(key="obs0_teacher").value == never.id


def test_the_observer_edits_a_score_on_theobservation_page(w, sqlite_session):
    oid = record_observation(session=sqlite_session, draft=draft(w.teacher.id, days_ago(1)), by=w.coach).id
    at = observation_page(w.coach.id, oid)
    next(s for s in at.segmented_control if s.label == "Edit: Culture & Routines").set_value("4")
    next(b for b in at.button if b.label == "Save changes").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Session(get_engine()) as s:
        from db.models import DomainScore

        marks = dict(
            s.exec(
                select(DomainScore.domain_code, DomainScore.score).where(DomainScore.observation_id == oid)
            ).all()
        )
    assert marks == {"CR": 4, "SB": 3}


def test_a_step_is_dropped_with_a_reason_on_theobservation_page(w, sqlite_session):
    (step,) = assign(sqlite_session, w.coach, w.teacher.id, days_ago(3), "Timed partner talk")
    with Session(get_engine()) as s:
        oid = s.exec(select(Observation.id)).first()
    at = observation_page(w.coach.id, oid)
    at.button(key=f"drop_{step.id}").click().run()
    assert any("why" in e.value for e in at.error)  # a reason is required
    at.text_input(key=f"reason_{step.id}").input("Moved to another class")
    at.button(key=f"drop_{step.id}").click().run()
    assert not at.exception
    with Session(get_engine()) as s:
        from db.models import ActionStep

        assert s.get(ActionStep, step.id).state == "dropped"


def test_leaders_see_the_observation_without_private_notes_or_edit_controls(w, sqlite_session):
    oid = record_observation(
        session=sqlite_session,
        draft=draft(w.teacher.id, days_ago(1), notes="Student J. was upset", notes_private=True),
        by=w.coach,
    ).id
    at = observation_page(w.leader.id, oid)
    assert "Student J." not in _text(at)
    assert "Save changes" not in [b.label for b in at.button]


def _step_box(at: AppTest, title: str):
    return next(x for x in at.expander if x.label.startswith(f"{title} · "))


def test_a_teachers_step_history_names_observations_by_date_not_by_internal_id(w, records):
    at = open_page(w.teacher_login.id, "app_pages/my_coaching.py")
    box = _step_box(at, "Wait three seconds")
    history = str(box.dataframe[0].value.to_dict())
    assert f"observation of {local_text(days_ago(5))[:10]}" in history
    assert not re.search(r"observation \d", _text(at)), _text(at)


@pytest.mark.parametrize("with_events", [True, False], ids=["assigned-event", "no-events-as-in-the-demo"])
def test_a_step_without_revisits_reads_no_revisits_yet_instead_of_an_empty_table(
    w, sqlite_session, with_events
):
    (step,) = assign(sqlite_session, w.coach, w.teacher.id, days_ago(2), "Scan the room")
    if not with_events:
        sqlite_session.exec(delete(StepEvent).where(StepEvent.step_id == step.id))
        sqlite_session.commit()
    at = open_page(w.teacher_login.id, "app_pages/my_coaching.py")
    box = _step_box(at, "Scan the room")
    assert "No revisits yet." in [c.value for c in box.caption]
    assert not box.dataframe


def test_a_domain_with_evidence_but_no_score_reads_not_observed_for_the_teacher(w, sqlite_session):
    record_observation(
        session=sqlite_session,
        draft=draft(w.teacher.id, days_ago(1), scores={"CR": 2}, evidence={"EN": "Hands up only"}),
        by=w.coach,
    )
    at = open_page(w.teacher_login.id, "app_pages/my_coaching.py")
    table = at.dataframe[0].value
    assert dict(zip(table["Domain"], table["Score"], strict=True)) == {
        "Culture & Routines": "2",
        "Engagement": "not observed",
    }
