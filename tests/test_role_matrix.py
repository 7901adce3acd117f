"""Who sees what, page by page: for each role x each page x a record the role may or may not see,
what is rendered. Written generically (every element of every page, as text, after trying each
option of each selectbox, and with a forbidden record's id in the URL) so that it covers whatever
each page renders now and later. Also: pages opened directly without a session show only the
sign-in notice, and no password hash or cookie key ever appears in a page, a log line or an export.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from google.protobuf import text_format
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from coaching import auth_keys
from db.engine import get_engine
from db.models import Brief, CoachingGoal, User
from tests import factories
from ui.nav import PAGES

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
ROLES = ("admin", "leader", "coach", "teacher")
MAX_EXTRA_RUNS = 14  # selectbox options tried per page and role

# Distinctive names and notes: A is in the viewers' school and caseload, B is not.
SEEN_TEACHER = "Zephyrine Okonkwo"
SAME_SCHOOL_TEACHER = "Cornelius Featherstone"  # school A, coach A: not the teacher login's own
UNSEEN_TEACHER = "Barnaby Quenneville"  # school B, coach B
PRIVATE_NOTE_A = "PRIVNOTE-ALPHA-7731"
PRIVATE_DEBRIEF_A = "PRIVDEBRIEF-ALPHA-2209"
OPEN_NOTE_A = "OPENNOTE-ALPHA-4410"
BRIEF_A = "BRIEFTEXT-ALPHA-3318"
NOTE_B = "NOTE-BRAVO-9921"
PRIVATE_NOTE_B = "PRIVNOTE-BRAVO-5510"
STEP_B = "STEP-BRAVO-6120"
GOAL_B = "GOAL-BRAVO-8044"
BRIEF_B = "BRIEFTEXT-BRAVO-7702"
NOTE_C = "NOTE-CHARLIE-3390"
HASH_PREFIXES = ("$2b$", "$2a$", "$2y$")

OTHER_SCHOOL = "Southfield Elementary"
OTHER_COACH = "Cole Coach"
# Everything of school B: its teacher and records, and also its name and its coach (the non-admin
# viewers all belong to school A).
B_MARKERS = (UNSEEN_TEACHER, NOTE_B, PRIVATE_NOTE_B, STEP_B, GOAL_B, BRIEF_B, OTHER_SCHOOL, OTHER_COACH)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "admin": (),
    "leader": (*B_MARKERS, PRIVATE_NOTE_A, PRIVATE_DEBRIEF_A),
    "coach": B_MARKERS,
    # Briefs are the coach's working notes; another teacher's records are never shown.
    "teacher": (*B_MARKERS, BRIEF_A, SAME_SCHOOL_TEACHER, NOTE_C),
}


@dataclass
class World:
    users: dict[str, int]
    forbidden_ids: dict[str, int]
    cookie_key: str
    hashes: list[str] = field(default_factory=list)
    seen_ids: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def world(sqlite_url) -> World:
    with Session(get_engine(), expire_on_commit=False) as s:
        factories.rubric(s)
        a = factories.school(s, "Northgate Elementary")
        b = factories.school(s, OTHER_SCHOOL)
        boss = factories.user(s, "admin", username="boss", name="Ada Admin")
        leader = factories.user(s, "leader", username="lena", name="Lena Leader", schools=[a])
        coach_a = factories.user(s, "coach", username="cora", name="Cora Coach", schools=[a])
        coach_b = factories.user(s, "coach", username="cole", name=OTHER_COACH, schools=[b])
        login_a = factories.user(s, "teacher", username="zephyrine", name=SEEN_TEACHER)
        login_b = factories.user(s, "teacher", username="barnaby", name=UNSEEN_TEACHER)
        ta = factories.teacher(s, a, coach=coach_a, name=SEEN_TEACHER, login=login_a)
        tc = factories.teacher(s, a, coach=coach_a, name=SAME_SCHOOL_TEACHER)
        tb = factories.teacher(s, b, coach=coach_b, name=UNSEEN_TEACHER, login=login_b)
        scores = {"CR": 2, "SB": 1, "EN": 3}
        t0 = datetime(2025, 9, 8, 16, tzinfo=UTC)
        priv = factories.observation(
            s,
            ta,
            coach_a,
            t0,
            scores,
            notes=f"{PRIVATE_NOTE_A} student Jamal read aloud",
            private=True,
            debriefed_after_h=20,
        )
        priv.debrief_notes = PRIVATE_DEBRIEF_A
        s.add(priv)
        open_a = factories.observation(
            s, ta, coach_a, datetime(2025, 9, 22, 16, tzinfo=UTC), {"CR": 3}, notes=OPEN_NOTE_A
        )
        factories.step(s, priv, "Wait time after questions")
        factories.observation(s, tc, coach_a, datetime(2025, 9, 9, 16, tzinfo=UTC), {"CR": 2}, notes=NOTE_C)
        ob = factories.observation(
            s, tb, coach_b, datetime(2025, 9, 10, 16, tzinfo=UTC), scores, notes=NOTE_B
        )
        ob2 = factories.observation(
            s,
            tb,
            coach_b,
            datetime(2025, 9, 24, 16, tzinfo=UTC),
            {"CR": 2},
            notes=PRIVATE_NOTE_B,
            private=True,
        )
        step_b = factories.step(s, ob, STEP_B)
        factories.revisit(s, step_b, ob2, "partial")
        s.add(CoachingGoal(teacher_id=tb.id, text=GOAL_B, set_by=coach_b.id, set_on=date(2025, 9, 11)))
        for t, text in ((ta, BRIEF_A), (tb, BRIEF_B)):
            s.add(
                Brief(
                    teacher_id=t.id,
                    created_by=t.coach_id,
                    records_hash=text,
                    facts_json="{}",
                    source="offline",
                    text=text,
                )
            )
        s.commit()
        key = auth_keys.cookie_key(session=s)
        hashes = [u.password_hash for u in s.exec(select(User)).all() if u.password_hash]
        return World(
            users={"admin": boss.id, "leader": leader.id, "coach": coach_a.id, "teacher": login_a.id},
            forbidden_ids={
                "teacher": tb.id,
                "observation": ob2.id,
                "step": step_b.id,
                "id": ob2.id,
                "seen_observation": open_a.id,
            },
            cookie_key=key,
            hashes=hashes,
            seen_ids={"private_observation": priv.id},
        )


def _texts(at: AppTest) -> list[str]:
    """Every element of the rendered page (main, sidebar, dialogs), as text."""
    out: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            try:
                out.append(text_format.MessageToString(proto, as_utf8=True))
            except Exception:  # noqa: BLE001 - a proto that cannot print: fall back to repr
                out.append(repr(proto))
        value = getattr(node, "value", None) if type(node).__name__ in ("Dataframe", "Table") else None
        if value is not None and hasattr(value, "to_csv"):
            out.append(value.to_csv())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return out


def _leaf_kinds(at: AppTest) -> list[str]:
    """The element types on the page (blocks left out)."""
    kinds: list[str] = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        if children is None:
            kinds.append(type(node).__name__)
            return
        for child in children.values():
            walk(child)

    walk(at._tree)
    return kinds


_UNKNOWN = object()
_CANDIDATES = range(0, 500)  # the ids of this small world's records


def _domain_words() -> list[str]:
    """String keys the domain layer names things by (e.g. heatmap row dimensions): the keys of
    module-level dicts in the loaded coaching modules."""
    import sys

    words: set[str] = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("coaching.") or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, dict):
                words.update(k for k in value if isinstance(k, str))
    return sorted(words)


def _cell_keys() -> list[tuple]:
    """(row key, domain code) pairs, as a heatmap cell picker uses."""
    from db.models import Domain

    with Session(get_engine()) as s:
        codes = sorted(set(s.exec(select(Domain.code)).all()))
    rows = [*range(0, 60), *_domain_words()]
    return [(r, c) for r in rows for c in codes]


def _option_values(box) -> list:
    """The values behind a selectbox's shown options. AppTest only sees the labels; with a
    format_func (id -> label) it cannot select by label, so recover each id by formatting the
    candidate ids and matching the labels."""
    from streamlit.testing.v1.element_tree import _format_value_for_widget

    fmt = box.format_func
    found: dict[str, object] = {}
    for candidate in [*_CANDIDATES, *box.options, *_domain_words(), *_cell_keys()]:
        try:
            shown = _format_value_for_widget(fmt, candidate)
        except Exception:  # noqa: BLE001 - a format_func that does not take this candidate
            continue
        if shown in box.options and shown not in found:
            found[shown] = candidate
    return [found.get(label, _UNKNOWN) for label in box.options]


def _leaks(texts: list[str], forbidden: tuple[str, ...], world: World) -> list[str]:
    blob = "\n".join(texts)
    found = [m for m in forbidden if m in blob]
    found += [f"password hash ({p})" for p in HASH_PREFIXES if p in blob]
    found += ["cookie key"] if world.cookie_key in blob else []
    return found


def _signed_in(world: World, role: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["user_id"] = world.users[role]
    at.run()
    return at


def _explore(world: World, role: str, page: str) -> tuple[list[str], list[str]]:
    """Render the page, then once per selectbox option (bounded), then with forbidden ids in the URL.
    Returns (leak descriptions, exceptions seen)."""
    forbidden = FORBIDDEN[role]
    leaks: list[str] = []
    errors: list[str] = []
    unexplored: list[str] = []

    def check(at: AppTest, how: str) -> None:
        leaks.extend(f"{how}: {m}" for m in _leaks(_texts(at), forbidden, world))
        errors.extend(f"{how}: {e.message}" for e in at.exception)

    at = _signed_in(world, role)
    at.switch_page(page).run()
    check(at, "first render")
    boxes = [(i, list(b.options), _option_values(b)) for i, b in enumerate(at.selectbox)]
    runs = 0
    for index, options, values in boxes:
        for option, value in zip(options, values, strict=True):
            if runs >= MAX_EXTRA_RUNS:
                break
            if value is _UNKNOWN:
                unexplored.append(f"{option!r}: its value could not be recovered")
                continue
            fresh = _signed_in(world, role)
            fresh.switch_page(page).run()
            if index >= len(fresh.selectbox) or list(fresh.selectbox[index].options) != options:
                continue
            label = fresh.selectbox[index].label
            try:
                fresh.selectbox[index].select(value).run()
            except ValueError as exc:
                unexplored.append(f"{label!r} = {option!r}: {exc}")
                continue
            runs += 1
            check(fresh, f"selectbox {label!r} = {option!r}")
    url = _signed_in(world, role)
    url.switch_page(page)
    for name, value in world.forbidden_ids.items():
        if name != "seen_observation":
            url.query_params[name] = str(value)
            url.query_params[f"{name}_id"] = str(value)
    url.run()
    check(url, "forbidden ids in the URL")
    if unexplored:
        logging.getLogger(__name__).info("%s on %s: unexplored %s", role, page, unexplored)
    return leaks, errors


MATRIX = [(role, spec.file) for role in ROLES for spec in PAGES if role in spec.roles]
REFUSED = [(role, spec.file) for role in ROLES for spec in PAGES if role not in spec.roles]


@pytest.mark.parametrize(("role", "page"), MATRIX, ids=[f"{r}-{p}" for r, p in MATRIX])
def test_a_page_never_shows_a_role_what_it_may_not_see(world, role, page):
    leaks, _errors = _explore(world, role, page)
    assert not leaks, f"{role} on {page} sees: {leaks}"


@pytest.mark.parametrize(("role", "page"), REFUSED, ids=[f"{r}-{p}" for r, p in REFUSED])
def test_a_page_outside_a_roles_navigation_is_refused(world, role, page):
    at = _signed_in(world, role)
    with pytest.raises(ValueError):
        at.switch_page(page)
    # Opening the page file directly (as a stale `pages/` request would) gets the refusal only.
    direct = AppTest.from_file(str(ROOT / page), default_timeout=60)
    direct.session_state["user_id"] = world.users[role]
    direct.run()
    assert not direct.exception
    assert [e.value for e in direct.error] == ["This page is not available to your role."]
    assert not _leaks(_texts(direct), (SEEN_TEACHER, *B_MARKERS, PRIVATE_NOTE_A), world)
    assert not direct.text_input and not direct.dataframe and not direct.selectbox


@pytest.mark.parametrize("page", [p.file for p in PAGES])
def test_a_page_opened_directly_without_a_session_shows_only_the_sign_in_notice(world, page):
    at = AppTest.from_file(str(ROOT / page), default_timeout=60).run()
    assert not at.exception
    assert [i.value for i in at.info] == ["Please sign in to use Coachloop."]
    blob = "\n".join(_texts(at))
    assert "Please sign in to use Coachloop." in blob
    assert not _leaks([blob], (SEEN_TEACHER, *B_MARKERS, PRIVATE_NOTE_A, "Northgate"), world)
    assert _leaf_kinds(at) == ["Info"]


def test_the_app_without_a_session_shows_only_the_login_form(world):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert not _leaks(_texts(at), (SEEN_TEACHER, *B_MARKERS, PRIVATE_NOTE_A, "Northgate"), world)


def test_the_matrix_walk_finds_names_in_selectbox_options_so_it_can_fail(world):
    # The admin's Users page lists every teacher in its pickers: the walk must see the name that
    # would be a leak for a coach, or the matrix above proves nothing.
    at = _signed_in(world, "admin")
    at.switch_page("app_pages/users.py").run()
    found = _leaks(_texts(at), FORBIDDEN["coach"], world)
    assert UNSEEN_TEACHER in found


@pytest.mark.parametrize(("role", "shows_notes"), [("leader", False), ("coach", True), ("admin", True)])
def test_the_private_observation_shows_its_scores_to_a_leader_and_its_notes_only_to_others(
    world, role, shows_notes
):
    at = _signed_in(world, role)
    at.switch_page("app_pages/observation.py")
    at.query_params["id"] = str(world.seen_ids["private_observation"])
    at.run()
    assert not at.exception
    blob = "\n".join(_texts(at))
    assert SEEN_TEACHER in blob  # the observation itself is shown
    assert (PRIVATE_NOTE_A in blob) is shows_notes
    assert (PRIVATE_DEBRIEF_A in blob) is shows_notes


def test_a_teacher_reads_the_private_notes_of_their_own_observation(world):
    at = _signed_in(world, "teacher")
    at.switch_page("app_pages/my_coaching.py").run()
    seen = "\n".join(_texts(at))
    for box in range(len(at.selectbox)):
        for value in _option_values(at.selectbox[box]):
            fresh = _signed_in(world, "teacher")
            fresh.switch_page("app_pages/my_coaching.py").run()
            fresh.selectbox[box].select(value).run()
            seen += "\n".join(_texts(fresh))
    assert PRIVATE_NOTE_A in seen
    assert not _leaks([seen], FORBIDDEN["teacher"], world)


def test_no_page_shows_a_password_hash_or_the_cookie_key_to_an_admin(world):
    for spec in PAGES:
        if "admin" not in spec.roles:
            continue
        at = _signed_in(world, "admin")
        at.switch_page(spec.file).run()
        blob = "\n".join(_texts(at))
        assert not any(h in blob for h in world.hashes), spec.file
        assert not any(p in blob for p in HASH_PREFIXES), spec.file
        assert world.cookie_key not in blob, spec.file


def test_no_log_line_or_printed_output_carries_a_hash_or_the_cookie_key(world, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    at = AppTest.from_file(APP, default_timeout=60).run()
    for password in ["wrong-one", "wrong-two", factories.PASSWORD]:
        fields = {t.label: t for t in at.text_input}
        fields["Username"].input("cora")
        fields["Password"].input(password)
        next(b for b in at.button if b.label == "Login").click().run()
    at.run()  # the run that writes the cookie
    for spec in PAGES:
        if "coach" in spec.roles:
            at.switch_page(spec.file).run()
    out, err = capfd.readouterr()
    everything = "\n".join([caplog.text, out, err])
    assert not any(h in everything for h in world.hashes)
    assert not any(p in everything for p in HASH_PREFIXES)
    assert world.cookie_key not in everything
    assert factories.PASSWORD not in everything


def test_an_export_carries_no_password_hash_or_cookie_key(world, tmp_path):
    exchange = pytest.importorskip("coaching.exchange")
    with Session(get_engine()) as s:
        paths = exchange.export_dir(session=s, out_dir=tmp_path / "export")
    blob = "\n".join(p.read_text(encoding="utf-8") for p in paths)
    assert SEEN_TEACHER in blob  # the export is real
    assert not any(p in blob for p in HASH_PREFIXES)
    assert not any(h in blob for h in world.hashes)
    assert world.cookie_key not in blob


# ---- the scope helpers themselves (coaching/access.py), on both databases ----


@pytest.fixture
def scoped(session):
    from coaching import access  # noqa: F401 - imported for the tests below

    factories.rubric(session)
    a, b = factories.school(session), factories.school(session)
    people = {
        "admin": factories.user(session, "admin"),
        "leader": factories.user(session, "leader", schools=[a]),
        "coach": factories.user(session, "coach", schools=[a]),
        "other_coach": factories.user(session, "coach", schools=[b]),
    }
    login = factories.user(session, "teacher")
    people["teacher"] = login
    ta = factories.teacher(session, a, coach=people["coach"], name=SEEN_TEACHER, login=login)
    tb = factories.teacher(session, b, coach=people["other_coach"], name=UNSEEN_TEACHER)
    oa = factories.observation(
        session,
        ta,
        people["coach"],
        datetime(2025, 9, 8, 16, tzinfo=UTC),
        {"CR": 2},
        notes=PRIVATE_NOTE_A,
        private=True,
    )
    ob = factories.observation(
        session, tb, people["other_coach"], datetime(2025, 9, 9, 16, tzinfo=UTC), {"CR": 3}
    )
    return people, ta, tb, oa, ob


@pytest.mark.parametrize("role", ["leader", "coach", "teacher"])
def test_scope_helpers_never_return_the_other_schools_teacher_or_observation(session, scoped, role):
    from coaching import access
    from coaching.errors import NotFound

    people, ta, tb, oa, ob = scoped
    user = people[role]
    assert [t.name for t in access.visible_teachers(session, user)] == [SEEN_TEACHER]
    assert access.get_teacher(session, user, ta.id).id == ta.id
    assert access.get_observation(session, user, oa.id).id == oa.id
    with pytest.raises(NotFound):
        access.get_teacher(session, user, tb.id)
    with pytest.raises(NotFound):
        access.get_observation(session, user, ob.id)


def test_leaders_never_read_private_notes_but_coach_teacher_and_admin_do(session, scoped):
    from coaching import access

    people, _ta, _tb, oa, _ob = scoped
    assert not access.can_read_notes(people["leader"], oa)
    assert all(access.can_read_notes(people[r], oa) for r in ("admin", "coach", "teacher"))
    oa.notes_private = False
    assert access.can_read_notes(people["leader"], oa)


@pytest.mark.parametrize("change", ["locked", "deactivated"])
def test_a_locked_or_deactivated_account_sees_nothing_even_with_a_stale_user_object(session, scoped, change):
    from coaching import access
    from coaching.errors import PermissionDenied

    people, _ta, _tb, oa, _ob = scoped
    for role in ("admin", "leader", "coach", "teacher"):
        user = people[role]
        if change == "locked":
            user.locked = True
        else:
            user.active = False
        assert access.visible_teachers(session, user) == []
        assert access.school_ids(session, user) == []
        assert not access.can_read_notes(user, oa)
        with pytest.raises(PermissionDenied):
            access.require_role(user, role)


def test_the_admin_export_zip_carries_no_hash_by_default_and_never_the_cookie_key(world):
    import io
    import zipfile

    archive = pytest.importorskip("coaching.archive")
    with Session(get_engine()) as s:
        boss = s.get(User, world.users["admin"])
        plain = archive.export_zip(session=s, user=boss)
        with_creds = archive.export_zip(session=s, user=boss, with_credentials=True)

    def text(data: bytes) -> str:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())

    assert SEEN_TEACHER in text(plain)
    assert not any(p in text(plain) for p in HASH_PREFIXES)
    assert world.cookie_key not in text(plain) and world.cookie_key not in text(with_creds)
