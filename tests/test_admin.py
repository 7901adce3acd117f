"""Admin actions: each works, each is audited, only admins may run them, and deleting a teacher's
records removes them while the audit log keeps only that it happened."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from streamlit.testing.v1 import AppTest

from coaching import admin, audit, users
from coaching.errors import PermissionDenied, ValidationError
from db.engine import get_engine
from db.models import (
    ActionStep,
    AuditLog,
    Brief,
    CoachingGoal,
    DomainScore,
    Observation,
    ObservationDraft,
    Revisit,
    StepEvent,
    Teacher,
    User,
    UserSchool,
)
from tests import factories

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def org(session):
    factories.rubric(session)
    north, south = factories.school(session, "North"), factories.school(session, "South")
    boss = factories.user(session, "admin", username="boss")
    coach = factories.user(session, "coach", username="cora", schools=[north])
    other_coach = factories.user(session, "coach", username="cole", schools=[south])
    leader = factories.user(session, "leader", username="lee", schools=[north])
    return {
        "boss": boss,
        "coach": coach,
        "cole": other_coach,
        "leader": leader,
        "north": north,
        "south": south,
    }


def _audit_rows(session, action: str) -> list[AuditLog]:
    return list(session.exec(select(AuditLog).where(AuditLog.action == action)).all())


def test_an_admin_creates_a_user_with_a_generated_password_shown_once(session, org):
    new, shown = admin.create_account(
        session=session,
        by=org["boss"],
        username="Nina",
        display_name="Nina N",
        role="leader",
        school_ids=[org["north"].id],
    )
    assert new.username == "nina" and new.must_change_password and len(shown) >= 12
    assert users.authenticate(session=session, username="nina", password=shown).id == new.id
    row = _audit_rows(session, "create")[-1]
    assert row.entity_id == str(new.id) and row.username == "boss" and shown not in row.detail
    again, shown2 = admin.create_account(
        session=session,
        by=org["boss"],
        username="pat",
        display_name="Pat",
        role="coach",
        password="chosen-password",
    )
    assert shown2 == "" and not again.must_change_password


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("bad user!", "cannot contain a space, '!'"),
        ("josé", "cannot contain 'é'"),
        ("a/b", "cannot contain '/'"),
        ("<script>", "cannot contain '<', '>'"),
        ("-rf", "must start with a letter or a digit"),
        (".hidden", "must start with a letter or a digit"),
        ("x" * 65, "at most 64 characters"),
        ("   ", "is empty"),
    ],
)
def test_a_username_outside_the_safe_characters_is_refused_with_a_clear_message(
    session, org, username, message
):
    with pytest.raises(ValidationError, match=message) as refused:
        admin.create_account(
            session=session, by=org["boss"], username=username, display_name="Someone", role="coach"
        )
    assert refused.value.field == "username"
    assert session.exec(select(func.count()).select_from(User)).one() == 4


@pytest.mark.parametrize(
    "username", ["demo-coach1", "maria.lopez2", "ana_b", "ana.lopez@example.org", "Mixed.Case", "x", "x" * 64]
)
def test_the_usernames_the_app_itself_makes_are_accepted(session, org, username):
    new, _ = admin.create_account(
        session=session, by=org["boss"], username=username, display_name="Someone", role="coach"
    )
    assert new.username == username.lower()


def test_bulk_teacher_logins_stay_valid_usernames_for_long_and_odd_names(session, org):
    factories.teacher(session, org["north"], name="Ünïcödé O'Brien-Smith  (Jr.)")
    factories.teacher(session, org["north"], name="Ω")  # nothing ASCII left: "teacher"
    for _ in range(2):
        factories.teacher(session, org["north"], name="Long " * 20)
    made = admin.bulk_create_teacher_logins(session=session, by=org["boss"])
    names = sorted(made["username"])
    assert "unicode.o.brien.smith.jr" in names and "teacher" in names
    assert all(1 <= len(n) <= 64 for n in names) and len(set(names)) == 4
    for name in names:
        users.validate_username(name)


def test_bulk_teacher_logins_are_made_from_names_with_unique_usernames(session, org):
    t1 = factories.teacher(session, org["north"], name="María López")
    t2 = factories.teacher(session, org["north"], name="Maria Lopez")
    linked = factories.teacher(
        session, org["south"], name="Has Login", login=factories.user(session, "teacher")
    )
    made = admin.bulk_create_teacher_logins(session=session, by=org["boss"])
    assert sorted(made["username"]) == ["maria.lopez", "maria.lopez2"]
    assert set(made["teacher"]) == {"María López", "Maria Lopez"}
    for row in made.itertuples():
        u = users.authenticate(session=session, username=row.username, password=row.password)
        assert u.role == "teacher" and u.must_change_password
    session.refresh(t1)
    session.refresh(t2)
    session.refresh(linked)
    assert t1.user_id and t2.user_id and t1.user_id != t2.user_id
    bulk = _audit_rows(session, "bulk_create")
    assert len(bulk) == 1 and json.loads(bulk[0].detail)["teacher_logins"] == 2
    assert all(p not in bulk[0].detail for p in made["password"])
    assert admin.bulk_create_teacher_logins(session=session, by=org["boss"]).empty


def test_resetting_a_password_returns_a_new_one_and_requires_a_change(session, org):
    new = admin.reset_password(session=session, by=org["boss"], user_id=org["coach"].id)
    session.refresh(org["coach"])
    assert org["coach"].must_change_password
    assert users.authenticate(session=session, username="cora", password=new).id == org["coach"].id
    with pytest.raises(users.LoginRefused):
        users.authenticate(session=session, username="cora", password=factories.PASSWORD)
    (row,) = _audit_rows(session, "reset_password")
    assert row.entity_id == str(org["coach"].id) and new not in row.detail


def test_changing_role_and_schools_is_audited_with_old_and_new_values(session, org):
    admin.change_role(session=session, by=org["boss"], user_id=org["coach"].id, role="leader")
    admin.set_schools(
        session=session,
        by=org["boss"],
        user_id=org["coach"].id,
        school_ids=[org["north"].id, org["south"].id],
    )
    session.refresh(org["coach"])
    assert org["coach"].role == "leader"
    assert admin.user_schools(session=session, by=org["boss"], user_id=org["coach"].id) == sorted(
        [org["north"].id, org["south"].id]
    )
    details = [json.loads(r.detail) for r in _audit_rows(session, "update")]
    assert {"role": {"old": "coach", "new": "leader"}} in details
    assert any("schools" in d for d in details)
    with pytest.raises(ValidationError):
        admin.change_role(session=session, by=org["boss"], user_id=org["coach"].id, role="king")


def test_lock_unlock_deactivate_and_reactivate_are_audited(session, org):
    uid = org["coach"].id
    admin.lock_user(session=session, by=org["boss"], user_id=uid)
    assert session.get(User, uid).locked
    admin.unlock_user(session=session, by=org["boss"], user_id=uid)
    assert not session.get(User, uid).locked
    admin.deactivate_user(session=session, by=org["boss"], user_id=uid)
    assert not session.get(User, uid).active
    admin.reactivate_user(session=session, by=org["boss"], user_id=uid)
    assert session.get(User, uid).active
    for action in ("lock", "unlock", "deactivate", "reactivate"):
        assert [r.entity_id for r in _audit_rows(session, action)] == [str(uid)]


def test_deactivation_keeps_the_users_history(session, org):
    t = factories.teacher(session, org["north"], coach=org["coach"])
    obs = factories.observation(session, t, org["coach"], datetime(2025, 9, 1, 15, tzinfo=UTC), {"CR": 3})
    admin.deactivate_user(session=session, by=org["boss"], user_id=org["coach"].id)
    assert session.get(Observation, obs.id).observer_id == org["coach"].id
    assert session.get(User, org["coach"].id) is not None


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(session, org):
    with pytest.raises(ValidationError, match="last active admin"):
        admin.change_role(session=session, by=org["boss"], user_id=org["boss"].id, role="coach")
    with pytest.raises(ValidationError):
        admin.deactivate_user(session=session, by=org["boss"], user_id=org["boss"].id)
    with pytest.raises(ValidationError):
        admin.lock_user(session=session, by=org["boss"], user_id=org["boss"].id)


def test_assigning_a_teacher_to_a_coach_is_audited(session, org):
    t = factories.teacher(session, org["north"], coach=org["coach"])
    admin.assign_coach(session=session, by=org["boss"], teacher_id=t.id, coach_id=org["cole"].id)
    session.refresh(t)
    assert t.coach_id == org["cole"].id
    (row,) = _audit_rows(session, "assign_coach")
    assert json.loads(row.detail) == {"coach_id": {"old": org["coach"].id, "new": org["cole"].id}}
    with pytest.raises(ValidationError):
        admin.assign_coach(session=session, by=org["boss"], teacher_id=t.id, coach_id=org["leader"].id)
    admin.assign_coach(session=session, by=org["boss"], teacher_id=t.id, coach_id=None)
    session.refresh(t)
    assert t.coach_id is None


def test_the_audit_log_is_filtered_and_newest_first(session, org):
    admin.lock_user(session=session, by=org["boss"], user_id=org["coach"].id)
    admin.unlock_user(session=session, by=org["boss"], user_id=org["coach"].id)
    log = admin.audit_entries(session=session, by=org["boss"])
    assert list(log["action"][:2]) == ["unlock", "lock"]
    only = admin.audit_entries(session=session, by=org["boss"], action="lock")
    assert list(only["action"]) == ["lock"]
    assert admin.audit_entries(session=session, by=org["boss"], username="nobody").empty
    assert admin.audit_entries(
        session=session, by=org["boss"], start=date(2000, 1, 1), end=date(2000, 1, 2)
    ).empty
    opts = admin.audit_filter_options(session=session, by=org["boss"])
    assert "lock" in opts["actions"] and "boss" in opts["users"]


ADMIN_CALLS = {
    "list_users": lambda s, by, o: admin.list_users(session=s, by=by),
    "create_account": lambda s, by, o: admin.create_account(
        session=s, by=by, username="x", display_name="X", role="coach"
    ),
    "bulk_create": lambda s, by, o: admin.bulk_create_teacher_logins(session=s, by=by),
    "reset_password": lambda s, by, o: admin.reset_password(session=s, by=by, user_id=o["cole"].id),
    "change_role": lambda s, by, o: admin.change_role(session=s, by=by, user_id=o["cole"].id, role="admin"),
    "set_schools": lambda s, by, o: admin.set_schools(session=s, by=by, user_id=o["cole"].id, school_ids=[]),
    "lock": lambda s, by, o: admin.lock_user(session=s, by=by, user_id=o["cole"].id),
    "unlock": lambda s, by, o: admin.unlock_user(session=s, by=by, user_id=o["cole"].id),
    "deactivate": lambda s, by, o: admin.deactivate_user(session=s, by=by, user_id=o["cole"].id),
    "reactivate": lambda s, by, o: admin.reactivate_user(session=s, by=by, user_id=o["cole"].id),
    "assign_coach": lambda s, by, o: admin.assign_coach(
        session=s, by=by, teacher_id=o["t"].id, coach_id=None
    ),
    "delete_records": lambda s, by, o: admin.delete_teacher_records(session=s, by=by, teacher_id=o["t"].id),
    "audit_entries": lambda s, by, o: admin.audit_entries(session=s, by=by),
}


@pytest.mark.parametrize("call", ADMIN_CALLS, ids=str)
def test_non_admins_are_refused_every_admin_action(session, org, call):
    org["t"] = factories.teacher(session, org["north"], coach=org["coach"])
    teacher_login = factories.user(session, "teacher")
    before = session.exec(select(func.count()).select_from(AuditLog)).one()
    for who in (org["coach"], org["leader"], teacher_login):
        with pytest.raises(PermissionDenied):
            ADMIN_CALLS[call](session, who, org)
    session.rollback()
    assert session.exec(select(func.count()).select_from(AuditLog)).one() == before
    assert session.get(Teacher, org["t"].id) is not None


def test_a_deactivated_admin_is_refused_too(session, org):
    second = factories.user(session, "admin")
    admin.deactivate_user(session=session, by=org["boss"], user_id=second.id)
    with pytest.raises(PermissionDenied):
        admin.list_users(session=session, by=session.get(User, second.id))


SECRET_NOTE = "froze during the fractions lesson"


def _full_record(session, org, name: str, login: User | None = None) -> Teacher:
    t = factories.teacher(session, org["north"], coach=org["coach"], name=name, login=login)
    o1 = factories.observation(
        session,
        t,
        org["coach"],
        datetime(2025, 9, 1, 15, tzinfo=UTC),
        {"CR": 2, "SB": 1},
        notes=f"{name}: {SECRET_NOTE}",
    )
    o2 = factories.observation(session, t, org["coach"], datetime(2025, 9, 20, 15, tzinfo=UTC), {"CR": 3})
    st_ = factories.step(session, o1, f"Wait time for {name}")
    factories.revisit(session, st_, o2, "implemented")
    session.add(StepEvent(step_id=st_.id, at=o2.observed_at, from_state="open", to_state="mastered"))
    session.add(
        CoachingGoal(teacher_id=t.id, text=f"{name} goal", set_by=org["coach"].id, set_on=date(2025, 9, 2))
    )
    session.add(
        Brief(
            teacher_id=t.id, records_hash="h", facts_json="{}", source="offline", text=f"Brief about {name}"
        )
    )
    session.commit()
    # Earlier audit rows that describe these records (as the other features write them).
    audit.record(
        session,
        by=org["coach"],
        action="create",
        entity="observation",
        entity_id=o1.id,
        detail={"teacher_id": t.id, "notes": SECRET_NOTE},
    )
    audit.record(
        session,
        by=org["coach"],
        action="create",
        entity="action_step",
        entity_id=st_.id,
        detail={"title": f"Wait time for {name}"},
    )
    audit.record(session, by=org["boss"], action="import", entity="roster", detail={"names": [name]})
    session.commit()
    return t


def test_deleting_a_teachers_records_removes_them_and_the_audit_keeps_only_that_it_happened(session, org):
    login = factories.user(session, "teacher", name="Quillon Vantrees", username="quillon")
    gone = _full_record(session, org, "Quillon Vantrees", login=login)
    kept = _full_record(session, org, "Bertha Kept")
    session.add(
        ObservationDraft(user_id=org["coach"].id, payload=json.dumps({"teacher_id": gone.id, "notes": "x"}))
    )
    session.commit()
    users.authenticate(session=session, username="quillon", password=factories.PASSWORD)  # a login row

    counts = admin.delete_teacher_records(session=session, by=org["boss"], teacher_id=gone.id)

    assert counts["observations"] == 2 and counts["domain_scores"] == 3 and counts["action_steps"] == 1
    assert counts["revisits"] == 1 and counts["goals"] == 1 and counts["briefs"] == 1
    assert counts["drafts"] == 1 and counts["teachers"] == 1 and counts["step_events"] == 1
    assert session.get(Teacher, gone.id) is None
    for model, col in [
        (Observation, Observation.teacher_id),
        (DomainScore, DomainScore.teacher_id),
        (ActionStep, ActionStep.teacher_id),
        (CoachingGoal, CoachingGoal.teacher_id),
        (Brief, Brief.teacher_id),
    ]:
        assert session.exec(select(func.count()).select_from(model).where(col == gone.id)).one() == 0
        assert session.exec(select(func.count()).select_from(model).where(col == kept.id)).one() >= 1
    assert session.exec(select(func.count()).select_from(Revisit)).one() == 1  # the kept teacher's
    assert session.exec(select(func.count()).select_from(ObservationDraft)).one() == 0
    anon = session.get(User, login.id)
    assert not anon.active and anon.password_hash is None and "Quillon" not in anon.display_name

    log = session.exec(select(AuditLog)).all()
    text = " ".join(f"{r.username} {r.detail}" for r in log)
    assert "Quillon" not in text and "quillon" not in text
    assert text.count(SECRET_NOTE) == 1  # the kept teacher's row is untouched
    (row,) = [r for r in log if r.action == "delete_records"]
    assert row.entity == "teacher" and row.entity_id == str(gone.id)
    assert set(json.loads(row.detail)) == {"counts"}


def test_deleting_records_of_a_teacher_with_none_leaves_only_the_row_gone(session, org):
    t = factories.teacher(session, org["south"])
    counts = admin.delete_teacher_records(session=session, by=org["boss"], teacher_id=t.id)
    assert counts["teachers"] == 1 and counts["observations"] == 0


# ---- the pages ----


@pytest.fixture
def admin_app(sqlite_url):
    with Session(get_engine()) as s:
        factories.rubric(s)
        north = factories.school(s, "North")
        boss = factories.user(s, "admin", username="boss")
        factories.teacher(s, north, name="Rosalind Fairweather")
        coach = factories.user(s, "coach", username="cora", schools=[north])
        return {"boss": boss.id, "coach": coach.id, "north": north.id}


def _open(page: str, user_id: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["user_id"] = user_id
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_the_users_page_creates_an_account_and_shows_its_password_once(admin_app):
    at = _open("app_pages/users.py", admin_app["boss"])
    fields = {t.label: t for t in at.text_input}
    fields["New username"].input("newbie")
    fields["Full name"].input("New Bie")
    next(b for b in at.button if b.label == "Create user").click().run()
    assert not at.exception
    assert any("Created newbie" in s.value for s in at.success)
    (shown,) = [c.value for c in at.code]
    with Session(get_engine()) as s:
        assert users.authenticate(session=s, username="newbie", password=shown).must_change_password
    at.run()
    assert shown not in [c.value for c in at.code]


def test_the_users_page_refuses_a_username_with_spaces_and_keeps_what_was_typed(admin_app):
    at = _open("app_pages/users.py", admin_app["boss"])
    at.text_input(key="new_username").input("bad user!")
    at.text_input(key="new_name").input("Bad User")
    next(b for b in at.button if b.label == "Create user").click().run()
    assert not at.exception and not at.success
    (error,) = [e.value for e in at.error]
    assert "cannot contain a space, '!'" in error and "a-z" in error
    assert at.text_input(key="new_username").value == "bad user!"
    assert at.text_input(key="new_name").value == "Bad User"
    with Session(get_engine()) as s:
        assert users.find_user(s, "bad user!") is None
    at.text_input(key="new_username").input("bad.user")
    next(b for b in at.button if b.label == "Create user").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Created bad.user" in s.value for s in at.success)
    assert at.text_input(key="new_username").value == ""  # a created account empties the form
    assert at.text_input(key="new_name").value == ""


def test_the_users_page_asks_for_a_teacher_when_assign_is_pressed_without_one(admin_app):
    at = _open("app_pages/users.py", admin_app["boss"])
    next(b for b in at.button if b.label == "Assign").click().run()
    assert not at.exception and not at.success
    assert [e.value for e in at.error] == ["Pick a teacher to assign a coach to."]


def test_the_users_page_bulk_creates_teacher_logins(admin_app):
    at = _open("app_pages/users.py", admin_app["boss"])
    next(b for b in at.button if b.label == "Create teacher logins").click().run()
    assert not at.exception
    assert any("Created 1 teacher logins" in s.value for s in at.success)
    with Session(get_engine()) as s:
        t = s.exec(select(Teacher).where(Teacher.name == "Rosalind Fairweather")).one()
        assert s.get(User, t.user_id).username == "rosalind.fairweather"


def test_the_users_page_resets_a_password_and_locks_a_user(admin_app):
    at = _open("app_pages/users.py", admin_app["boss"])
    pick = next(s for s in at.selectbox if s.label == "User")
    pick.select(next(o for o in pick.options if o.startswith("cora"))).run()
    next(b for b in at.button if b.label == "Reset password").click().run()
    assert not at.exception
    (shown,) = [c.value for c in at.code]
    next(b for b in at.button if b.label == "Lock").click().run()
    assert not at.exception
    with Session(get_engine()) as s:
        cora = s.get(User, admin_app["coach"])
        assert cora.locked and users.check_password(shown, cora.password_hash)


def test_the_audit_page_lists_entries_with_filters(admin_app):
    with Session(get_engine()) as s:
        admin.lock_user(session=s, by=s.get(User, admin_app["boss"]), user_id=admin_app["coach"])
    at = _open("app_pages/audit.py", admin_app["boss"])
    frame = at.dataframe[0].value
    assert "lock" in list(frame["action"])
    pick = next(s for s in at.selectbox if s.label == "Action")
    pick.select("lock").run()
    assert not at.exception
    assert list(at.dataframe[0].value["action"]) == ["lock"]


@pytest.mark.parametrize("page", ["app_pages/users.py", "app_pages/audit.py"])
def test_admin_pages_refuse_a_coach_even_when_opened_directly(admin_app, page):
    at = AppTest.from_file(str(Path(APP).parent / page), default_timeout=30)
    at.session_state["user_id"] = admin_app["coach"]
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["This page is not available to your role."]
    assert not at.dataframe and not at.text_input


def test_school_links_survive_only_through_set_schools(session, org):
    admin.set_schools(session=session, by=org["boss"], user_id=org["leader"].id, school_ids=[org["south"].id])
    links = session.exec(select(UserSchool.school_id).where(UserSchool.user_id == org["leader"].id)).all()
    assert links == [org["south"].id]


def test_deletion_blanks_audit_details_naming_a_teacher_with_accented_letters(session, org):
    t = factories.teacher(session, org["north"], name="Søren Ølby")
    audit.record(
        session, by=org["boss"], action="import", entity="import_batch", detail={"names": ["Søren Ølby"]}
    )
    audit.record(
        session, by=org["boss"], action="import", entity="import_batch", detail={"names": ["Other One"]}
    )
    session.commit()
    admin.delete_teacher_records(session=session, by=org["boss"], teacher_id=t.id)
    details = [r.detail for r in _audit_rows(session, "import")]
    assert sorted(details) == sorted(["{}", json.dumps({"names": ["Other One"]}, sort_keys=True)])
