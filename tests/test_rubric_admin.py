"""The rubric editor: publishing makes a new version and never changes a past score (both DBs)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlmodel import select

from coaching import rubric_admin
from coaching.errors import PermissionDenied, ValidationError
from coaching.rubric_admin import DomainEdit
from db.models import AuditLog, Block, Domain, Observation, RubricVersion
from tests import factories
from tests._import_helpers import people

SCHOOL_X_DOMAIN = (
    "SELECT school_id, domain_code, AVG(score * 1.0), COUNT(score) FROM domain_score "
    "GROUP BY school_id, domain_code ORDER BY school_id, domain_code"
)


@pytest.fixture
def history(session):
    users = people(session)
    a, b = factories.school(session, "North"), factories.school(session, "South")
    t1 = factories.teacher(session, a, coach=users["mrivera"])
    t2 = factories.teacher(session, b, coach=users["jchen"])
    marks = [
        (t1, users["mrivera"], datetime(2025, 9, 3, 10), {"CR": 2, "SB": 1, "EN": 3}),
        (t1, users["mrivera"], datetime(2025, 9, 20, 10), {"CR": 3, "SB": 2, "EN": None}),
        (t2, users["jchen"], datetime(2025, 9, 5, 10), {"CR": 1, "SB": 4, "RI": 3}),
        (t2, users["jchen"], datetime(2025, 10, 1, 10), {"CR": 2, "SB": 3, "RI": 4}),
    ]
    obs = [factories.observation(session, t, o, when, s) for t, o, when, s in marks]
    return {**users, "observations": obs, "teachers": (t1, t2)}


def _edits(session, admin) -> dict[str, DomainEdit]:
    return {e.code: e for e in rubric_admin.current_edits(session=session, user=admin)}


def _heatmap(session):
    return [
        tuple(float(v) if i == 2 else v for i, v in enumerate(r)) for r in session.exec(text(SCHOOL_X_DOMAIN))
    ]


def test_a_rubric_change_keeps_old_scores_and_the_old_heatmap_identical(session, history):
    admin = history["admin"]
    before = _heatmap(session)
    v1 = rubric_admin.current_version(session=session, user=admin)
    edits = _edits(session, admin)
    edits["CR"].name = "Routines & Procedures"
    edits["CR"].look_fors = ["Routines run without reminders", "Transitions take under a minute"]
    edits["SB"].retired = True
    new = DomainEdit(
        "FB", "Feedback to Students", "Students hear how to improve.", ["Specific", "Timely", "Acted on"]
    )
    v2 = rubric_admin.publish_rubric(
        session=session, by=admin, domains=[*edits.values(), new], name="Core v2"
    )

    assert (v2.version, v2.is_current, v2.name) == (v1.version + 1, True, "Core v2")
    session.refresh(v1)
    assert v1.is_current is False
    assert _heatmap(session) == before
    assert {o.rubric_version_id for o in session.exec(select(Observation)).all()} == {v1.id}
    old = {d.code: d for d in rubric_admin.domains_of(session=session, user=admin, version_id=v1.id)}
    assert old["CR"].name == "Culture & Routines" and not old["SB"].retired
    now = {d.code: d for d in rubric_admin.domains_of(session=session, user=admin, version_id=v2.id)}
    assert len(now) == 9 and now["SB"].retired and now["FB"].position == 8
    assert now["CR"].name == "Routines & Procedures" and now["EN"].name == "Engagement"
    detail = session.exec(select(AuditLog).where(AuditLog.entity == "rubric_version")).one().detail
    assert '"CR": "edited"' in detail and '"SB": "retired"' in detail and '"FB": "added"' in detail


def test_scores_under_two_versions_compare_through_domain_codes(session, history):
    admin = history["admin"]
    edits = _edits(session, admin)
    edits["CR"].name = "Routines & Procedures"
    v2 = rubric_admin.publish_rubric(session=session, by=admin, domains=list(edits.values()))
    t1 = history["teachers"][0]
    later = factories.observation(session, t1, history["mrivera"], datetime(2025, 11, 3, 10), {"CR": 4})
    assert later.rubric_version_id == v2.id
    rows = dict(
        session.exec(
            text(
                "SELECT domain_code, COUNT(DISTINCT rubric_version_id) FROM domain_score GROUP BY domain_code"
            )
        ).all()
    )
    assert rows["CR"] == 2  # one heatmap row spans both versions


def test_a_retired_domain_stays_in_every_later_version(session, history):
    admin = history["admin"]
    edits = _edits(session, admin)
    edits["SB"].retired = True
    rubric_admin.publish_rubric(session=session, by=admin, domains=list(edits.values()))
    edits = _edits(session, admin)
    edits["EN"].description = "Most students think most of the time."
    v3 = rubric_admin.publish_rubric(session=session, by=admin, domains=[edits["EN"]])  # others copied
    codes = {
        d.code: d.retired for d in rubric_admin.domains_of(session=session, user=admin, version_id=v3.id)
    }
    assert len(codes) == 8 and codes["SB"] is True and v3.version == 3
    assert [v.version for v in rubric_admin.versions(session=session, user=admin)] == [3, 2, 1]
    assert session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).one().id == v3.id  # noqa: E712


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: setattr(e["CR"], "look_fors", ["Only one"]), "has 1 look-fors; give 2 to 4"),
        (lambda e: setattr(e["CR"], "look_fors", ["a", "b", "c", "d", "e"]), "has 5 look-fors"),
        (lambda e: setattr(e["CR"], "name", "  "), "Domain CR: the name is empty"),
        (lambda e: setattr(e["CR"], "code", "SB"), "Two domains use the code 'SB'"),
        (
            lambda e: setattr(e["EN"], "name", "culture & routines"),
            "Domains CR and EN are both named 'culture & routines'",
        ),
        (lambda e: setattr(e["CR"], "code", "9 lives"), "must start with a letter"),
        (lambda e: None, "Nothing changed"),
        (lambda e: [setattr(d, "retired", True) for d in e.values()], "At least one domain must stay active"),
    ],
)
def test_an_invalid_rubric_is_refused_with_a_clear_message(session, history, change, message):
    admin = history["admin"]
    edits = _edits(session, admin)
    change(edits)
    with pytest.raises(ValidationError, match=message):
        rubric_admin.publish_rubric(session=session, by=admin, domains=list(edits.values()))
    assert len(rubric_admin.versions(session=session, user=admin)) == 1


def test_only_an_admin_publishes_a_rubric_or_adds_a_block(session, history):
    edits = _edits(session, history["admin"])
    with pytest.raises(PermissionDenied):
        rubric_admin.publish_rubric(session=session, by=history["mrivera"], domains=list(edits.values()))
    with pytest.raises(PermissionDenied):
        rubric_admin.add_block(session=session, by=history["leader"], code="LAB", name="Lab")


def test_an_admin_adds_a_block_with_a_unique_code_and_name(session, history):
    block = rubric_admin.add_block(session=session, by=history["admin"], code=" lab ", name="Science  Lab")
    assert (block.code, block.name, block.active) == ("LAB", "Science Lab", True)
    assert block.position > max(b.position for b in session.exec(select(Block)).all() if b.id != block.id)
    with pytest.raises(ValidationError, match="code 'WG' exists already"):
        rubric_admin.add_block(session=session, by=history["admin"], code="wg", name="Whole class")
    with pytest.raises(ValidationError, match="named 'whole group' exists already"):
        rubric_admin.add_block(session=session, by=history["admin"], code="WG2", name="whole group")
    assert session.exec(select(AuditLog).where(AuditLog.entity == "block")).one().entity_id == str(block.id)


def test_domains_of_an_old_version_are_unchanged_after_publishing(session, history):
    admin = history["admin"]
    v1 = rubric_admin.current_version(session=session, user=admin)
    snapshot = [
        d.model_dump() for d in rubric_admin.domains_of(session=session, user=admin, version_id=v1.id)
    ]
    edits = _edits(session, admin)
    edits["RI"].look_fors = ["Errors corrected on the spot", "Every student reads aloud"]
    rubric_admin.publish_rubric(session=session, by=admin, domains=list(edits.values()))
    session.expire_all()
    after = [
        d.model_dump()
        for d in session.exec(
            select(Domain).where(Domain.rubric_version_id == v1.id).order_by(Domain.position)
        )
    ]
    assert after == snapshot
