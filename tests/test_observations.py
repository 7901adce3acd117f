"""Saving, editing and reading observations on both databases."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from coaching import observations as obs_mod
from coaching.errors import CoachloopError, NotFound, PermissionDenied, StepCapReached, ValidationError
from coaching.observations import NewStep, record_observation, update_observation
from coaching.steps import drop_step
from coaching.timeutil import month_key
from db.engine import get_engine
from db.models import ActionStep, AuditLog, DomainScore, Observation, Revisit, StepEvent
from tests._observe_helpers import assign, counts, days_ago, draft, fresh, revisit, world


@pytest.fixture
def w(session):
    return world(session)


def test_a_full_save_stores_scores_evidence_a_revisit_and_a_new_library_step_in_one_go(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(10), "Wait three seconds")
    when = days_ago(1)
    d = draft(
        w.teacher.id,
        when,
        scores={"CR": 2, "SB": 1, "EN": 3, "CFU": 4, "RIG": None},
        evidence={"CR": "Entry took 4 minutes", "RIG": "not seen"},
        notes="Strong closing.",
        revisits={step.id: "implemented"},
        revisit_notes={step.id: "waited every time"},
        new_steps=[NewStep(library_code=_library_code(session, "SB"))],
        client_token="tok-full",
    )
    obs = record_observation(session=session, draft=d, by=w.coach)

    scores = {
        s.domain_code: s
        for s in session.exec(select(DomainScore).where(DomainScore.observation_id == obs.id))
    }
    assert {c: s.score for c, s in scores.items()} == {"CR": 2, "SB": 1, "EN": 3, "CFU": 4, "RIG": None}
    cr = scores["CR"]
    assert cr.evidence == "Entry took 4 minutes"
    assert (cr.teacher_id, cr.school_id, cr.grade_band, cr.observer_id) == (
        w.teacher.id,
        w.school.id,
        w.teacher.grade_band,
        w.coach.id,
    )
    assert cr.block_id == obs.block_id and cr.rubric_version_id == obs.rubric_version_id
    assert cr.month == month_key(when)
    (rv,) = session.exec(select(Revisit).where(Revisit.observation_id == obs.id)).all()
    assert (rv.rating, rv.note) == ("implemented", "waited every time")
    step = fresh(session, ActionStep, step.id)
    assert step.state == "mastered" and step.mastered_at.replace(tzinfo=None) == when.replace(tzinfo=None)
    (new,) = session.exec(select(ActionStep).where(ActionStep.observation_id == obs.id)).all()
    assert new.library_step_id is not None and new.domain_code == "SB" and new.state == "open"
    assert new.check_back_on == (when.astimezone(obs_mod.school_tz()).date() + timedelta(days=14))
    audited = session.exec(
        select(AuditLog).where(AuditLog.entity == "observation", AuditLog.action == "create")
    ).all()
    assert any(a.entity_id == str(obs.id) for a in audited)
    assert session.exec(select(AuditLog).where(AuditLog.entity == "action_step")).all()


def _library_code(session, domain):
    from db.models import LibraryStep

    return session.exec(select(LibraryStep.code).where(LibraryStep.domain_code == domain)).first()


def test_a_custom_step_takes_its_title_from_the_first_80_characters(session, w):
    text = "Narrate what students are doing well before any correction, " * 3
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(1), text)
    assert step.title.startswith("Narrate what students") and len(step.title) <= 81
    assert step.custom_text == text.strip()


def test_a_second_save_with_the_same_client_token_returns_the_first_and_writes_nothing(session, w):
    d = draft(
        w.teacher.id, days_ago(1), new_steps=[NewStep(custom_text="Scan the room")], client_token="dup-1"
    )
    first = record_observation(session=session, draft=d, by=w.coach)
    before = counts(session)
    second = record_observation(session=session, draft=d, by=w.coach)
    assert second.id == first.id
    assert counts(session) == before


def test_two_threads_with_the_same_token_save_once(database_url, session, w):
    d = draft(w.teacher.id, days_ago(1), client_token="twin")
    results, errors = [], []

    def save():
        with Session(get_engine(), expire_on_commit=False) as s:
            try:
                results.append(record_observation(session=s, draft=d, by=w.coach).id)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(set(results)) == 1
    assert len(session.exec(select(Observation)).all()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scores": {"CR": 5}}, "must be 1, 2, 3 or 4"),
        ({"scores": {"CR": 0}}, "must be 1, 2, 3 or 4"),
        ({"scores": {"XX": 2}}, "not a domain"),
        ({"observed_at": days_ago(-1)}, "in the future"),
        ({"observed_at": days_ago(365 * 30)}, "before 2000"),
        ({"duration_min": 0}, "between 1 and 240"),
        ({"duration_min": 241}, "between 1 and 240"),
        ({"block_code": "NOPE"}, "block"),
        ({"scores": {}, "notes": "  "}, "Score at least one domain"),
        ({"new_steps": [NewStep()]}, "library step or the text"),
        ({"new_steps": [NewStep(library_code="NOPE-9")]}, "does not exist"),
        ({"new_steps": [NewStep(custom_text="x", domain_code="ZZ")]}, "not a domain"),
        ({"notes": "pasted\x00text"}, "NUL character"),
        ({"block_code": "\x00"}, "NUL character"),
    ],
)
def test_invalid_input_is_refused_with_a_clear_message_and_writes_nothing(session, w, change, message):
    before = counts(session)
    kw = {"scores": {"CR": 2}} | change
    when = kw.pop("observed_at", days_ago(1))
    with pytest.raises(ValidationError, match=message):
        record_observation(session=session, draft=draft(w.teacher.id, when, **kw), by=w.coach)
    assert counts(session) == before


def test_a_note_alone_is_enough_to_save(session, w):
    obs = record_observation(
        session=session, draft=draft(w.teacher.id, days_ago(1), scores={}, notes="Brief visit"), by=w.coach
    )
    assert obs.id and not session.exec(select(DomainScore).where(DomainScore.observation_id == obs.id)).all()


def test_a_revisit_of_a_dropped_step_is_refused_and_writes_nothing(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(10), "Cold call")
    drop_step(session=session, step_id=step.id, reason="Teacher moved to a new grade", by=w.coach)
    before = counts(session)
    with pytest.raises(ValidationError, match="dropped; only open or mastered steps can be revisited"):
        revisit(session, w.coach, w.teacher.id, days_ago(1), {step.id: "implemented"})
    assert counts(session) == before


def test_a_revisit_of_another_teachers_step_is_refused(session, w):
    (step,) = assign(session, w.other_coach, w.other_teacher.id, days_ago(10), "Cold call")
    with pytest.raises(ValidationError, match="does not belong to this teacher"):
        revisit(session, w.coach, w.teacher.id, days_ago(1), {step.id: "partial"})


def test_a_bad_rating_is_refused(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(10), "Cold call")
    with pytest.raises(ValidationError, match="Not yet, Partial or Implemented"):
        revisit(session, w.coach, w.teacher.id, days_ago(1), {step.id: "great"})


def test_a_teacher_outside_the_caseload_cannot_be_observed_and_nothing_is_written(session, w):
    before = counts(session)
    with pytest.raises(NotFound, match="not in your caseload"):
        record_observation(session=session, draft=draft(w.other_teacher.id, days_ago(1)), by=w.coach)
    assert counts(session) == before


@pytest.mark.parametrize("role", ["leader", "teacher_login"])
def test_only_coaches_and_admins_may_observe(session, w, role):
    with pytest.raises(PermissionDenied):
        record_observation(session=session, draft=draft(w.teacher.id, days_ago(1)), by=getattr(w, role))


def test_the_fourth_open_step_is_refused_with_the_open_step_ids_and_nothing_is_written(session, w):
    steps = assign(session, w.coach, w.teacher.id, days_ago(10), "One", "Two")
    steps += assign(session, w.admin, w.teacher.id, days_ago(9), "Three")  # another observer counts too
    before = counts(session)
    with pytest.raises(StepCapReached) as exc:
        assign(session, w.coach, w.teacher.id, days_ago(1), "Four")
    assert sorted(exc.value.open_step_ids) == sorted(s.id for s in steps)
    assert "mark one mastered or drop it" in str(exc.value).lower()
    assert counts(session) == before


FIVE_NEW = [NewStep(library_code=f"CR-{i}") for i in range(1, 5)] + [NewStep(custom_text="Narrate first")]


@pytest.mark.parametrize("already_open", [0, 2])
def test_more_new_steps_than_the_cap_ask_for_fewer_new_steps_and_offer_nothing_to_drop(
    session, w, already_open
):
    assign(session, w.coach, w.teacher.id, days_ago(10), *["Old"] * already_open)
    before = counts(session)
    with pytest.raises(StepCapReached) as exc:
        record_observation(
            session=session, draft=draft(w.teacher.id, days_ago(1), new_steps=FIVE_NEW), by=w.coach
        )
    message = str(exc.value)
    assert "At most 3 new steps can be assigned to Tess Teacher at once" in message
    assert "Remove at least 2 of them" in message
    assert "already has" not in message and "mastered" not in message
    assert exc.value.open_step_ids == []  # mastering or dropping cannot make room
    assert counts(session) == before


def test_the_cap_message_asks_to_free_as_many_steps_as_are_over_the_limit(session, w):
    steps = assign(session, w.coach, w.teacher.id, days_ago(10), "One", "Two")
    with pytest.raises(StepCapReached) as exc:
        assign(session, w.coach, w.teacher.id, days_ago(1), "Three", "Four", "Five")
    assert "already has 2 open steps (“One”; “Two”)" in str(exc.value)
    assert "Mark 2 of them mastered or drop them" in str(exc.value)
    assert sorted(exc.value.open_step_ids) == sorted(s.id for s in steps)


def test_steps_rated_not_yet_in_the_same_save_stay_open_and_shrink_the_room_for_new_steps(session, w):
    steps = assign(session, w.coach, w.teacher.id, days_ago(10), "One", "Two", "Three")
    rated = {steps[0].id: "partial", steps[1].id: "not_yet"}
    with pytest.raises(StepCapReached) as exc:
        revisit(session, w.coach, w.teacher.id, days_ago(1), rated, new_steps=FIVE_NEW[:2])
    assert "At most 1 new step can be assigned" in str(exc.value)
    assert "the 2 steps rated in this observation stay open" in str(exc.value)
    assert exc.value.open_step_ids == []
    # One new step fits once the third (unrated) step is freed: only that one is offered.
    with pytest.raises(StepCapReached) as exc:
        revisit(session, w.coach, w.teacher.id, days_ago(1), rated, new_steps=FIVE_NEW[:1])
    assert "mark one mastered or drop it" in str(exc.value).lower()
    assert exc.value.open_step_ids == [steps[2].id]


def test_steps_mastered_in_the_same_save_leave_room_for_as_many_new_steps(session, w):
    steps = assign(session, w.coach, w.teacher.id, days_ago(10), "One", "Two", "Three")
    obs = revisit(
        session,
        w.coach,
        w.teacher.id,
        days_ago(1),
        {s.id: "implemented" for s in steps},
        new_steps=FIVE_NEW[:3],
    )
    assert len(session.exec(select(ActionStep).where(ActionStep.observation_id == obs.id)).all()) == 3


def test_a_step_mastered_in_the_same_observation_frees_a_slot(session, w):
    steps = assign(session, w.coach, w.teacher.id, days_ago(10), "One", "Two", "Three")
    obs = record_observation(
        session=session,
        draft=draft(
            w.teacher.id,
            days_ago(1),
            revisits={steps[0].id: "implemented"},
            new_steps=[NewStep(custom_text="Four")],
        ),
        by=w.coach,
    )
    assert len(session.exec(select(ActionStep).where(ActionStep.observation_id == obs.id)).all()) == 1


def test_a_reopen_may_exceed_the_cap(session, w):
    steps = assign(session, w.coach, w.teacher.id, days_ago(20), "One")
    revisit(session, w.coach, w.teacher.id, days_ago(15), {steps[0].id: "implemented"})
    assign(session, w.coach, w.teacher.id, days_ago(14), "Two", "Three", "Four")
    revisit(session, w.coach, w.teacher.id, days_ago(1), {steps[0].id: "partial"})
    open_ = session.exec(
        select(ActionStep).where(ActionStep.teacher_id == w.teacher.id, ActionStep.state == "open")
    )
    assert len(open_.all()) == 4


def test_the_cap_is_configurable(session, w, monkeypatch):
    from coaching.settings import get_settings

    monkeypatch.setenv("COACHLOOP_OPEN_STEP_CAP", "1")
    get_settings.cache_clear()
    try:
        assign(session, w.coach, w.teacher.id, days_ago(10), "One")
        with pytest.raises(StepCapReached, match="limit of 1"):
            assign(session, w.coach, w.teacher.id, days_ago(1), "Two")
    finally:
        get_settings.cache_clear()


def test_two_coaches_saving_at_once_cannot_both_pass_the_cap(database_url, session, w):
    assign(session, w.coach, w.teacher.id, days_ago(10), "Existing")
    session.commit()  # end this session's read transaction (on SQLite it holds the write lock)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def save(by, title, token):
        with Session(get_engine(), expire_on_commit=False) as s:
            barrier.wait(10)
            try:
                assign(s, by, w.teacher.id, days_ago(1), title + " A", title + " B", client_token=token)
                outcomes.append("saved")
            except StepCapReached:
                outcomes.append("cap")
            except CoachloopError as exc:  # pragma: no cover - shown in the assertion
                outcomes.append(repr(exc))

    threads = [
        threading.Thread(target=save, args=(w.coach, "Coach", "c1")),
        threading.Thread(target=save, args=(w.admin, "Admin", "a1")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["cap", "saved"]
    session.expire_all()
    open_ = session.exec(
        select(ActionStep).where(ActionStep.teacher_id == w.teacher.id, ActionStep.state == "open")
    )
    assert len(open_.all()) == 3


def test_the_observer_can_edit_within_the_window_and_the_audit_keeps_old_and_new(session, w):
    obs = record_observation(
        session=session, draft=draft(w.teacher.id, days_ago(1), scores={"CR": 2}), by=w.coach
    )
    update_observation(
        session=session,
        observation_id=obs.id,
        draft=draft(w.teacher.id, days_ago(1), scores={"CR": 3, "EN": 4}, notes="fixed"),
        by=w.coach,
    )
    marks = {
        s.domain_code: s.score
        for s in session.exec(select(DomainScore).where(DomainScore.observation_id == obs.id))
    }
    assert marks == {"CR": 3, "EN": 4}
    row = session.exec(
        select(AuditLog).where(AuditLog.entity == "observation", AuditLog.action == "update")
    ).one()
    detail = json.loads(row.detail)
    assert detail["scores"] == {"old": {"CR": 2}, "new": {"CR": 3, "EN": 4}}
    assert detail["notes"] == {"old": "", "new": "fixed"}


def test_after_the_window_only_an_admin_can_edit(session, w):
    obs = record_observation(session=session, draft=draft(w.teacher.id, days_ago(3)), by=w.coach)
    obs = fresh(session, Observation, obs.id)
    obs.created_at = days_ago(2)
    session.add(obs)
    session.commit()
    with pytest.raises(PermissionDenied, match="within 24 hours"):
        update_observation(
            session=session,
            observation_id=obs.id,
            draft=draft(w.teacher.id, days_ago(3), scores={"CR": 4}),
            by=w.coach,
        )
    update_observation(
        session=session,
        observation_id=obs.id,
        draft=draft(w.teacher.id, days_ago(3), scores={"CR": 4}),
        by=w.admin,
    )
    assert session.exec(select(DomainScore.score).where(DomainScore.observation_id == obs.id)).all() == [4]


def test_another_coach_cannot_edit_even_within_the_window(session, w):
    obs = record_observation(session=session, draft=draft(w.teacher.id, days_ago(1)), by=w.admin)
    with pytest.raises(PermissionDenied):
        update_observation(
            session=session, observation_id=obs.id, draft=draft(w.teacher.id, days_ago(1)), by=w.coach
        )


def test_an_edit_replays_the_step_in_date_order(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(40), "Wait time")
    first = revisit(session, w.coach, w.teacher.id, days_ago(35), {step.id: "implemented"})
    revisit(session, w.coach, w.teacher.id, days_ago(10), {step.id: "implemented"})
    assert fresh(session, ActionStep, step.id).state == "sustained"
    # The first revisit is corrected to "partial": the step was only mastered 10 days ago.
    update_observation(
        session=session,
        observation_id=first.id,
        draft=draft(w.teacher.id, days_ago(35), revisits={step.id: "partial"}),
        by=w.admin,
    )
    step = fresh(session, ActionStep, step.id)
    assert step.state == "mastered"
    assert step.mastered_at.replace(tzinfo=None) == days_ago(10).replace(tzinfo=None)
    assert step.sustained_at is None
    events = session.exec(select(StepEvent).where(StepEvent.step_id == step.id).order_by(StepEvent.at)).all()
    assert [(e.from_state, e.to_state) for e in events] == [("", "open"), ("open", "mastered")]


def test_a_failed_save_mid_way_leaves_no_partial_rows(session, w):
    # The cap check happens after scores and revisits are written in the transaction.
    steps = assign(session, w.coach, w.teacher.id, days_ago(10), "One", "Two", "Three")
    before = counts(session)
    with pytest.raises(StepCapReached):
        record_observation(
            session=session,
            draft=draft(
                w.teacher.id,
                days_ago(1),
                revisits={steps[0].id: "partial"},
                new_steps=[NewStep(custom_text="x")],
            ),
            by=w.coach,
        )
    assert counts(session) == before
    assert fresh(session, ActionStep, steps[0].id).state == "open"


def test_debrief_and_acknowledgement_are_recorded_and_audited(session, w):
    obs = record_observation(session=session, draft=draft(w.teacher.id, days_ago(2)), by=w.coach)
    obs_mod.log_debrief(
        session=session, observation_id=obs.id, debriefed_at=days_ago(1), notes="Talked", by=w.coach
    )
    obs_mod.acknowledge(session=session, observation_id=obs.id, reflection="Will try", by=w.teacher_login)
    view = obs_mod.observation_view(session=session, observation_id=obs.id, user=w.teacher_login)
    assert view["debrief_notes"] == "Talked" and view["reflection"] == "Will try"
    assert view["acknowledged_at"] is not None
    with pytest.raises(ValidationError, match="before the observation"):
        obs_mod.log_debrief(
            session=session, observation_id=obs.id, debriefed_at=days_ago(3), notes="", by=w.coach
        )
    with pytest.raises(PermissionDenied):
        obs_mod.acknowledge(session=session, observation_id=obs.id, reflection="", by=w.coach)


def test_a_teacher_cannot_acknowledge_someone_elses_observation(session, w):
    obs = record_observation(session=session, draft=draft(w.other_teacher.id, days_ago(2)), by=w.other_coach)
    with pytest.raises(NotFound):
        obs_mod.acknowledge(session=session, observation_id=obs.id, reflection="", by=w.teacher_login)


def test_leaders_do_not_see_private_notes(session, w):
    obs = record_observation(
        session=session,
        draft=draft(w.teacher.id, days_ago(2), notes="Student J. cried", notes_private=True),
        by=w.coach,
    )
    assert obs_mod.observation_view(session=session, observation_id=obs.id, user=w.leader)["notes"] is None
    assert (
        obs_mod.observation_view(session=session, observation_id=obs.id, user=w.coach)["notes"]
        == "Student J. cried"
    )
    html = obs_mod.observation_summary_html(session=session, observation_id=obs.id, user=w.leader)
    assert "cried" not in html and "Tess Teacher" in html


def test_list_observations_is_scoped_to_the_user(session, w):
    mine = record_observation(session=session, draft=draft(w.teacher.id, days_ago(2)), by=w.coach)
    record_observation(session=session, draft=draft(w.other_teacher.id, days_ago(2)), by=w.other_coach)
    assert [o["id"] for o in obs_mod.list_observations(session=session, user=w.teacher_login)] == [mine.id]
    assert [o["id"] for o in obs_mod.list_observations(session=session, user=w.coach)] == [mine.id]
    assert len(obs_mod.list_observations(session=session, user=w.admin)) == 2


def test_a_draft_is_kept_per_coach_and_cleared(session, w):
    assert obs_mod.load_draft(session=session, by=w.coach) is None
    obs_mod.save_draft(session=session, by=w.coach, payload={"teacher_id": w.teacher.id, "notes": "half"})
    obs_mod.save_draft(session=session, by=w.admin, payload={"notes": "admin's"})
    assert obs_mod.load_draft(session=session, by=w.coach)["notes"] == "half"
    obs_mod.clear_draft(session=session, by=w.coach)
    assert obs_mod.load_draft(session=session, by=w.coach) is None
    assert obs_mod.load_draft(session=session, by=w.admin)["notes"] == "admin's"


@pytest.mark.parametrize(
    ("change", "entered"),
    [
        ({}, False),  # the teacher alone
        ({"scores": {"CR": None}, "evidence": {"CR": "  "}, "notes": " "}, False),  # blanks only
        ({"scores": {"CR": 2}}, True),
        ({"evidence": {"CR": "Entry took four minutes"}}, True),
        ({"notes": "Half a thought"}, True),
        ({"revisits": {1: "partial"}}, True),
        ({"new_steps": [NewStep(library_code="CR-1")]}, True),
        ({"block_code": "SG"}, True),
        ({"observed_at": days_ago(2)}, True),
        ({"duration_min": 20}, True),
    ],
)
def test_a_form_has_input_only_once_something_beyond_its_defaults_is_entered(change, entered):
    blank = draft(1, days_ago(1), scores={})
    form = dataclasses.replace(blank, **change)
    assert obs_mod.has_input(form, blank=blank) is entered


def test_the_form_context_lists_the_caseload_first_and_the_library_by_need(session, w):
    record_observation(session=session, draft=draft(w.other_teacher.id, days_ago(5)), by=w.admin)
    # Oscar is another coach's teacher, observed by the admin only: the coach does not see him.
    from coaching.observations import observe_context

    record_observation(session=session, draft=draft(w.teacher.id, days_ago(4)), by=w.coach)
    ctx = observe_context(session=session, user=w.coach, teacher_id=w.teacher.id, scores={"EN": 1, "CR": 3})
    assert [t["label"] for t in ctx["teachers"]] == ["Tess Teacher"]
    assert [e["domain_code"] for e in ctx["library"]][0] == "EN"
    admin_ctx = observe_context(session=session, user=w.admin, scores={})
    assert [t["label"] for t in admin_ctx["teachers"]] == ["Oscar Elsewhere", "Tess Teacher"]
