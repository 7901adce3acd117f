"""The quick observation page under AppTest, as a coach (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from db.engine import get_engine
from db.models import ActionStep, Observation, Revisit
from db.models import ObservationDraft as DraftRow
from tests._observe_helpers import assign, days_ago, world

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def w(sqlite_session):
    return world(sqlite_session)


def _open(user_id: int, teacher_id: int | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = user_id
    if teacher_id is not None:
        at.session_state["observe_teacher_id"] = teacher_id
    at.run()
    at.switch_page("app_pages/observe.py").run()
    assert not at.exception, at.exception
    return at


def _seg(at: AppTest, label: str):
    return next(s for s in at.segmented_control if s.label == label)


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _count(model) -> int:
    with Session(get_engine()) as s:
        return len(s.exec(select(model)).all())


def _fill(at: AppTest) -> AppTest:
    for name, score in [
        ("Culture & Routines", "2"),
        ("Safety & Behavior", "1"),
        ("Engagement", "3"),
        ("Rigor", "4"),
    ]:
        _seg(at, name).set_value(score)
    at.text_input(key="obs0_ev_CR").input("Entry took four minutes")
    at.text_area(key="obs0_notes").input("Good pacing.")
    return at.run()


def test_the_teacher_can_be_preselected_by_the_caseload_link(w):
    at = _open(w.coach.id, w.teacher.id)
    assert at.selectbox(key="obs0_teacher").value == w.teacher.id
    assert [s.label for s in at.segmented_control][:2] == ["Culture & Routines", "Safety & Behavior"]


def test_a_coach_saves_a_full_observation_with_a_revisit_and_a_new_library_step(w, sqlite_session):
    (step,) = assign(sqlite_session, w.coach, w.teacher.id, days_ago(10), "Wait three seconds")
    at = _open(w.coach.id, w.teacher.id)
    _fill(at)
    _seg(
        at, next(s.label for s in at.segmented_control if s.label.startswith("Wait three seconds"))
    ).set_value("Implemented")
    lib = at.multiselect(key="obs0_lib")
    assert lib.options[0].startswith("Safety & Behavior")  # lowest score first
    lib.select(lib.options[0]).run()
    _button(at, "Save observation").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Saved the observation of Tess Teacher" in at.success[0].value
    assert _count(Observation) == 2
    with Session(get_engine()) as s:
        new = s.exec(select(Observation).order_by(Observation.id.desc())).first()
        assert new.notes == "Good pacing."
        assert s.exec(select(Revisit).where(Revisit.observation_id == new.id)).one().rating == "implemented"
        added = s.exec(select(ActionStep).where(ActionStep.observation_id == new.id)).one()
        assert added.domain_code == "SB"
        assert s.get(ActionStep, step.id).state == "mastered"
        assert s.get(DraftRow, w.coach.id) is None  # draft cleared on save
    # the form is empty again for the next observation
    assert all(s.value is None for s in at.segmented_control if s.label == "Culture & Routines")


def test_a_double_submit_saves_once(w):
    at = _open(w.coach.id, w.teacher.id)
    _fill(at)
    token = at.session_state["obs0_token"]
    _button(at, "Save observation").click().run()
    assert _count(Observation) == 1
    # The form moved to a new generation (empty, no teacher): the old Save button is gone, so a
    # second click of it from the browser refers to a widget that no longer exists.
    assert "Save observation" not in [b.label for b in at.button]
    at.run()
    assert _count(Observation) == 1
    # A retried save of the same form (interrupted before the page moved on) reuses its token.
    at.session_state["observe_gen"] = 0
    at.session_state["obs0_token"] = token
    at.run()
    _fill(at)
    _button(at, "Save observation").click().run()
    assert not at.exception
    assert "Saved the observation" in at.success[0].value  # the retry reports the first save
    assert _count(Observation) == 1


def test_invalid_input_keeps_every_field_and_says_what_to_fix(w):
    at = _open(w.coach.id, w.teacher.id)
    _fill(at)
    at.date_input(key="obs0_date").set_value(days_ago(-3).date()).run()
    _button(at, "Save observation").click().run()
    assert not at.exception
    assert any("in the future" in e.value for e in at.error)
    assert _count(Observation) == 0
    assert _seg(at, "Culture & Routines").value == "2"
    assert at.text_area(key="obs0_notes").value == "Good pacing."
    assert at.text_input(key="obs0_ev_CR").value == "Entry took four minutes"


def test_an_empty_form_is_refused(w):
    at = _open(w.coach.id, w.teacher.id)
    _button(at, "Save observation").click().run()
    assert any("Score at least one domain" in e.value for e in at.error)


def test_the_cap_is_explained_and_a_step_can_be_marked_mastered_to_make_room(w, sqlite_session):
    steps = assign(sqlite_session, w.coach, w.teacher.id, days_ago(10), "One", "Two", "Three")
    at = _open(w.coach.id, w.teacher.id)
    _fill(at)
    at.text_area(key="obs0_custom").input("Narrate the positive first").run()
    _button(at, "Save observation").click().run()
    assert any("limit of 3" in e.value for e in at.error)
    assert _count(Observation) == 1  # only the one that assigned the three steps
    assert [b.label for b in at.button].count("Mark mastered") == 3
    at.button(key=f"master_{steps[0].id}").click().run()
    assert not at.exception
    # the form kept its values; saving now works
    assert at.text_area(key="obs0_custom").value == "Narrate the positive first"
    _button(at, "Save observation").click().run()
    assert not at.error
    assert _count(Observation) == 2


@pytest.mark.parametrize("already_open", [0, 1])
def test_more_new_steps_than_the_cap_are_refused_plainly_with_no_make_room_list(
    w, sqlite_session, already_open
):
    assign(sqlite_session, w.coach, w.teacher.id, days_ago(10), *["Old"] * already_open)
    before = _count(Observation)
    at = _open(w.coach.id, w.teacher.id)
    _fill(at)
    lib = at.multiselect(key="obs0_lib")
    for option in lib.options[:4]:
        lib.select(option)
    at.text_area(key="obs0_custom").input("Narrate the positive first").run()
    _button(at, "Save observation").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("At most 3 new steps can be assigned to Tess Teacher at once" in e for e in errors), errors
    assert not any("already has" in e for e in errors), errors
    assert not any("Make room" in x.value for x in at.warning)
    assert "Mark mastered" not in [b.label for b in at.button]
    assert _count(Observation) == before
    assert len(at.multiselect(key="obs0_lib").value) == 4  # the form kept its values


def test_picking_a_teacher_alone_saves_no_draft_but_a_score_does(w):
    at = _open(w.coach.id, w.teacher.id)  # from the caseload
    picked = _open(w.coach.id)
    picked.selectbox(key="obs0_teacher").select(w.teacher.id).run()
    assert not at.exception and not picked.exception
    with Session(get_engine()) as s:
        assert s.get(DraftRow, w.coach.id) is None
    assert not any("Restored your unsaved draft" in i.value for i in _open(w.coach.id).info)
    _seg(at, "Engagement").set_value("3").run()
    with Session(get_engine()) as s:
        assert '"score_EN": "3"' in s.get(DraftRow, w.coach.id).payload


def test_undoing_every_entry_forgets_the_draft(w):
    at = _open(w.coach.id, w.teacher.id)
    _seg(at, "Engagement").set_value("3").run()
    _seg(at, "Engagement").set_value(None).run()
    with Session(get_engine()) as s:
        assert s.get(DraftRow, w.coach.id) is None


def test_the_restored_draft_notice_is_shown_once(w):
    _fill(_open(w.coach.id, w.teacher.id))
    reloaded = _open(w.coach.id)
    assert any("Restored your unsaved draft" in i.value for i in reloaded.info)
    _seg(reloaded, "Engagement").set_value("4").run()
    assert not reloaded.exception
    assert not any("Restored your unsaved draft" in i.value for i in reloaded.info)
    assert _seg(reloaded, "Culture & Routines").value == "2"  # the restored values stay


def test_the_draft_survives_a_reload(w):
    at = _open(w.coach.id, w.teacher.id)
    _fill(at)
    reloaded = _open(w.coach.id)  # a new browser session of the same coach
    assert any("Restored your unsaved draft" in i.value for i in reloaded.info)
    assert reloaded.selectbox(key="obs0_teacher").value == w.teacher.id
    assert _seg(reloaded, "Culture & Routines").value == "2"
    assert reloaded.text_area(key="obs0_notes").value == "Good pacing."


def test_leaders_cannot_open_the_observe_page(w):
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = w.leader.id
    at.run()
    with pytest.raises(ValueError):
        at.switch_page("app_pages/observe.py")


def test_a_draft_for_another_teacher_is_offered_not_forced_and_not_overwritten(w, sqlite_session):
    from tests import factories

    other = factories.teacher(sqlite_session, w.school, coach=w.coach, name="Bea Second")
    _fill(_open(w.coach.id, w.teacher.id))  # leaves a draft for Tess
    at = _open(w.coach.id, other.id)  # comes from the caseload to observe Bea
    assert at.selectbox(key="obs0_teacher").value == other.id
    assert _seg(at, "Culture & Routines").value is None
    assert any("unsaved draft for Tess Teacher" in i.value for i in at.info)
    with Session(get_engine()) as s:
        assert '"notes": "Good pacing."' in s.get(DraftRow, w.coach.id).payload
    at.button(key="observe_restore").click().run()
    assert not at.exception
    assert at.selectbox(key="obs0_teacher").value == w.teacher.id
    assert at.text_area(key="obs0_notes").value == "Good pacing."
