"""The step lifecycle as stored by the save path, on both databases: mastery, sustain after 21
days, reopen, drop, manual mastery, history, the library order and coaching goals."""

from __future__ import annotations

import pytest
from sqlmodel import select

from coaching import steps as steps_mod
from coaching.errors import PermissionDenied, ValidationError
from coaching.timeutil import local_date
from db.models import ActionStep, AuditLog, CoachingGoal, StepEvent
from tests._observe_helpers import assign, days_ago, fresh, revisit, world


@pytest.fixture
def w(session):
    return world(session)


def _naive(moment):
    return None if moment is None else moment.replace(tzinfo=None)


def test_mastery_then_sustained_after_21_days_then_terminal(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(60), "Entry routine")
    revisit(session, w.coach, w.teacher.id, days_ago(50), {step.id: "not_yet"})
    assert fresh(session, ActionStep, step.id).state == "open"
    revisit(session, w.coach, w.teacher.id, days_ago(45), {step.id: "implemented"})
    s = fresh(session, ActionStep, step.id)
    assert (s.state, _naive(s.mastered_at)) == ("mastered", _naive(days_ago(45)))
    revisit(session, w.coach, w.teacher.id, days_ago(30), {step.id: "implemented"})  # 15 days: still mastered
    assert fresh(session, ActionStep, step.id).state == "mastered"
    revisit(session, w.coach, w.teacher.id, days_ago(24), {step.id: "implemented"})  # 21 days after mastery
    s = fresh(session, ActionStep, step.id)
    assert s.state == "sustained"
    assert _naive(s.sustained_at) == _naive(days_ago(24)) and _naive(s.mastered_at) == _naive(days_ago(45))
    with pytest.raises(ValidationError, match="sustained"):
        revisit(session, w.coach, w.teacher.id, days_ago(1), {step.id: "implemented"})


def test_a_partial_after_mastery_reopens_and_history_keeps_the_mastery_with_dates(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(40), "Cold call")
    revisit(session, w.coach, w.teacher.id, days_ago(30), {step.id: "implemented"})
    revisit(session, w.coach, w.teacher.id, days_ago(20), {step.id: "partial"})
    s = fresh(session, ActionStep, step.id)
    assert s.state == "open" and s.mastered_at is None
    revisit(session, w.coach, w.teacher.id, days_ago(10), {step.id: "implemented"})
    s = fresh(session, ActionStep, step.id)
    assert s.state == "mastered" and _naive(s.mastered_at) == _naive(days_ago(10))
    events = session.exec(select(StepEvent).where(StepEvent.step_id == step.id).order_by(StepEvent.at)).all()
    assert [(e.from_state, e.to_state, _naive(e.at)) for e in events] == [
        ("", "open", _naive(days_ago(40))),
        ("open", "mastered", _naive(days_ago(30))),
        ("mastered", "open", _naive(days_ago(20))),
        ("open", "mastered", _naive(days_ago(10))),
    ]
    history = steps_mod.step_history(session=session, user=w.teacher_login, step_id=step.id)
    assert [h["what"] for h in history if h["kind"] == "revisit"] == ["implemented", "partial", "implemented"]


def test_a_backdated_observation_is_replayed_in_date_order(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(40), "Wait time")
    revisit(session, w.coach, w.teacher.id, days_ago(5), {step.id: "implemented"})
    # Logged late: a visit 30 days ago that already saw it implemented; mastery moves back, and
    # the later implemented revisit (25 days on) sustains it.
    revisit(session, w.coach, w.teacher.id, days_ago(30), {step.id: "implemented"})
    s = fresh(session, ActionStep, step.id)
    assert s.state == "sustained" and _naive(s.mastered_at) == _naive(days_ago(30))


def test_dropping_needs_a_reason_and_is_terminal_and_audited(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(10), "Timed partner talk")
    with pytest.raises(ValidationError, match="why"):
        steps_mod.drop_step(session=session, step_id=step.id, reason="  ", by=w.coach)
    steps_mod.drop_step(session=session, step_id=step.id, reason="Not a fit for this class", by=w.coach)
    s = fresh(session, ActionStep, step.id)
    assert s.state == "dropped" and s.drop_reason == "Not a fit for this class" and s.dropped_at
    assert session.exec(
        select(AuditLog).where(AuditLog.entity == "action_step", AuditLog.action == "update")
    ).first()
    with pytest.raises(ValidationError):
        steps_mod.drop_step(session=session, step_id=step.id, reason="again", by=w.coach)


def test_a_teacher_cannot_drop_or_master_a_step(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(10), "Timed partner talk")
    with pytest.raises(PermissionDenied):
        steps_mod.drop_step(session=session, step_id=step.id, reason="no", by=w.teacher_login)
    with pytest.raises(PermissionDenied):
        steps_mod.mark_mastered(session=session, step_id=step.id, by=w.teacher_login)


def test_manual_mastery_survives_a_later_replay(session, w):
    (step,) = assign(session, w.coach, w.teacher.id, days_ago(10), "Scan the room")
    steps_mod.mark_mastered(session=session, step_id=step.id, by=w.coach)
    s = fresh(session, ActionStep, step.id)
    assert s.state == "mastered" and s.mastered_at is not None
    # An unrelated replay (drop of nothing; replay directly) keeps the manual mastery.
    steps_mod.replay_step(session, s)
    session.commit()
    assert fresh(session, ActionStep, step.id).state == "mastered"
    causes = [e.cause for e in session.exec(select(StepEvent).where(StepEvent.step_id == step.id))]
    assert any(c.startswith("marked mastered by") for c in causes)


def test_open_and_mastered_steps_lists_only_those_states(session, w):
    a, b, c = assign(session, w.coach, w.teacher.id, days_ago(30), "A", "B", "C")
    revisit(session, w.coach, w.teacher.id, days_ago(20), {b.id: "implemented"})
    steps_mod.drop_step(session=session, step_id=c.id, reason="x", by=w.coach)
    listed = steps_mod.open_and_mastered_steps(session=session, user=w.coach, teacher_id=w.teacher.id)
    assert [(s["title"], s["state"]) for s in listed] == [("A", "open"), ("B", "mastered")]
    assert listed[0]["days_open"] == (local_date(days_ago(0)) - local_date(days_ago(30))).days
    assert listed[0]["past_check_back"] is True


def test_the_library_lists_the_lowest_scoring_domains_first(session, w):
    entries = steps_mod.library_for(session=session, domain_codes_order=["SB", "CR"])
    domains = [e.domain_code for e in entries]
    assert domains[0] == "SB" and domains.index("CR") < min(
        domains.index(d) for d in set(domains) - {"SB", "CR"}
    )
    assert all(e.status == "active" for e in entries)


def test_a_new_goal_closes_the_previous_one(session, w):
    first = steps_mod.set_goal(
        session=session, teacher_id=w.teacher.id, text="Tight routines", domain_code="CR", by=w.coach
    )
    second = steps_mod.set_goal(session=session, teacher_id=w.teacher.id, text="More rigor", by=w.coach)
    assert (
        steps_mod.active_goal(session=session, user=w.teacher_login, teacher_id=w.teacher.id).id == second.id
    )
    assert fresh(session, CoachingGoal, first.id).closed_on is not None
    steps_mod.close_goal(session=session, goal_id=second.id, by=w.coach)
    assert steps_mod.active_goal(session=session, user=w.coach, teacher_id=w.teacher.id) is None
    with pytest.raises(ValidationError):
        steps_mod.set_goal(session=session, teacher_id=w.teacher.id, text=" ", by=w.coach)
