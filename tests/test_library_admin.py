"""The action-step library editor: admins curate, coaches propose, retiring keeps assigned steps."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from coaching import library_admin
from coaching.errors import PermissionDenied, ValidationError
from db.engine import get_engine
from db.models import ActionStep, AuditLog, Domain, LibraryStep, RubricVersion
from tests import factories
from tests._import_helpers import people


@pytest.fixture
def crew(session):
    return people(session)


def _move(session, code: str) -> LibraryStep:
    return session.exec(select(LibraryStep).where(LibraryStep.code == code)).one()


def test_an_admin_adds_a_move_with_the_next_code_of_its_domain(session, crew):
    step = library_admin.add_move(
        session=session,
        by=crew["admin"],
        domain_code="cr",
        title="Line-up  routine",
        move="Practise the line-up.",
    )
    assert (step.code, step.domain_code, step.title, step.status) == (
        "CR-6",
        "CR",
        "Line-up routine",
        "active",
    )
    assert step in library_admin.list_moves(session=session, user=crew["mrivera"], domain_code="CR")
    assert session.exec(select(AuditLog).where(AuditLog.entity == "library_step")).one().action == "create"


def test_retiring_a_move_keeps_the_steps_already_assigned(session, crew):
    school = factories.school(session)
    teacher = factories.teacher(session, school, coach=crew["mrivera"])
    obs = factories.observation(session, teacher, crew["mrivera"], datetime(2025, 9, 3, 10), {"CR": 2})
    move = _move(session, "CR-2")
    assigned = factories.step(session, obs, title=move.title)
    assigned.library_step_id, assigned.domain_code = move.id, "CR"
    session.add(assigned)
    session.commit()

    library_admin.edit_move(
        session=session, by=crew["admin"], move_id=move.id, title="Directions in 15 words"
    )
    library_admin.retire_move(session=session, by=crew["admin"], move_id=move.id)
    session.expire_all()
    kept = session.get(ActionStep, assigned.id)
    assert (kept.library_step_id, kept.title, kept.state) == (move.id, "Short what-to-do directions", "open")
    assert session.get(LibraryStep, move.id).status == "retired"
    offered = library_admin.list_moves(session=session, user=crew["mrivera"], domain_code="CR")
    assert move.id not in [m.id for m in offered] and len(offered) == 4
    library_admin.restore_move(session=session, by=crew["admin"], move_id=move.id)
    assert session.get(LibraryStep, move.id).status == "active"


def test_a_coach_proposes_and_an_admin_approves(session, crew):
    coach = crew["jchen"]
    proposal = library_admin.propose_move(
        session=session,
        by=coach,
        domain_code="RI",
        title="Echo read a tricky line",
        move="Read, then class echoes.",
    )
    assert (proposal.status, proposal.proposed_by) == ("proposed", coach.id)
    others = library_admin.list_moves(session=session, user=crew["mrivera"], statuses=("active", "proposed"))
    assert proposal.id not in [m.id for m in others]  # another coach does not see it
    mine = library_admin.list_moves(session=session, user=coach, statuses=("active", "proposed"))
    assert proposal.id in [m.id for m in mine]
    assert proposal.id not in [m.id for m in library_admin.list_moves(session=session, user=coach)]
    queue = library_admin.list_moves(session=session, user=crew["admin"], statuses=("proposed",))
    assert [m.id for m in queue] == [proposal.id]

    with pytest.raises(PermissionDenied):
        library_admin.approve_move(session=session, by=coach, move_id=proposal.id)
    library_admin.approve_move(session=session, by=crew["admin"], move_id=proposal.id)
    assert proposal.id in [m.id for m in library_admin.list_moves(session=session, user=crew["mrivera"])]
    with pytest.raises(ValidationError, match="is active; it cannot be approved"):
        library_admin.approve_move(session=session, by=crew["admin"], move_id=proposal.id)
    actions = session.exec(select(AuditLog.action).where(AuditLog.entity == "library_step")).all()
    assert actions == ["propose", "update"]


def test_a_declined_proposal_is_kept_as_retired(session, crew):
    p = library_admin.propose_move(
        session=session, by=crew["jchen"], domain_code="EN", title="Hands up", move="x"
    )
    library_admin.decline_move(session=session, by=crew["admin"], move_id=p.id)
    assert session.get(LibraryStep, p.id).status == "retired"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"domain_code": "ZZ", "title": "T", "move": "M"}, "ZZ is not an active rubric domain"),
        ({"domain_code": "CR", "title": "  ", "move": "M"}, "The title is empty"),
        ({"domain_code": "CR", "title": "T", "move": " "}, "Describe the move"),
        (
            {"domain_code": "CR", "title": "short WHAT-to-do directions", "move": "M"},
            "already has a move titled",
        ),
    ],
)
def test_a_move_must_be_complete_and_new(session, crew, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        library_admin.add_move(session=session, by=crew["admin"], **kwargs)


def test_teachers_and_leaders_cannot_change_the_library(session, crew):
    with pytest.raises(PermissionDenied):
        library_admin.propose_move(session=session, by=crew["leader"], domain_code="CR", title="T", move="M")
    with pytest.raises(PermissionDenied):
        library_admin.add_move(session=session, by=crew["mrivera"], domain_code="CR", title="T", move="M")
    with pytest.raises(PermissionDenied):
        library_admin.retire_move(session=session, by=crew["mrivera"], move_id=_move(session, "CR-1").id)


# --- the Rubric & library page (AppTest, SQLite) ----------------------------------------------


@pytest.fixture
def page_users(sqlite_url):
    with Session(get_engine(), expire_on_commit=False) as s:
        return {k: v.id for k, v in people(s).items()}


def _open(user_id: int):
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=30)
    at.session_state["user_id"] = user_id
    at.run()
    at = at.switch_page("app_pages/library.py").run()
    assert not at.exception
    return at


def _db():
    return Session(get_engine(), expire_on_commit=False)


def test_the_page_publishes_a_renamed_domain_as_a_new_version(page_users):
    at = _open(page_users["admin"])
    at.text_input(key="d_name_CR").set_value("Routines & Procedures")
    at = next(b for b in at.button if b.label == "Publish a new version").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("Published")
    with _db() as s:
        rv = s.exec(select(RubricVersion).where(RubricVersion.is_current == True)).one()  # noqa: E712
        cr = s.exec(select(Domain).where(Domain.rubric_version_id == rv.id, Domain.code == "CR")).one()
        assert (rv.version, cr.name) == (2, "Routines & Procedures")


def test_the_page_shows_a_rubric_mistake_and_publishes_nothing(page_users):
    at = _open(page_users["admin"])
    at.text_area(key="d_lf_SB").set_value("Just one look-for")
    at = next(b for b in at.button if b.label == "Publish a new version").click().run()
    assert "give 2 to 4" in at.error[0].value
    with _db() as s:
        assert len(s.exec(select(RubricVersion)).all()) == 1


def test_a_coach_proposes_a_move_on_the_page_and_an_admin_approves_it(page_users):
    at = _open(page_users["jchen"])
    assert not [b for b in at.button if b.label == "Publish a new version" and not b.disabled]
    at.selectbox(key="new_mv_domain").set_value("RI")
    at.text_input(key="new_mv_title").set_value("Echo read a tricky line")
    at.text_area(key="new_mv_move").set_value("Read the line, then the group echoes it.")
    at = next(b for b in at.button if b.label == "Propose").click().run()
    assert not at.exception and at.success[0].value == "Proposed 'Echo read a tricky line'."
    with _db() as s:
        proposal = s.exec(select(LibraryStep).where(LibraryStep.title == "Echo read a tricky line")).one()
        assert proposal.status == "proposed"

    at = _open(page_users["admin"])
    picker = at.selectbox(key="mv_pick")
    label = next(m for m in picker.options if "Echo read" in m)
    at = picker.select_index(picker.options.index(label)).run()
    at.radio(key=f"mv_verb_{proposal.id}").set_value("approve")
    at = next(b for b in at.button if b.label == "Apply").click().run()
    assert not at.exception and "approve done" in at.success[0].value
    with _db() as s:
        assert s.get(LibraryStep, proposal.id).status == "active"
