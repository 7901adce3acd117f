"""Export to CSV and restore into an empty database: the files and columns promised, no secrets
without --with-credentials, and a round trip that keeps ids, metrics and step states (also across
SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import itertools
import os
import re
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from coaching import audit
from coaching.errors import CoachloopError
from coaching.exchange import export_dir, restore_dir
from coaching.metrics import program_metrics
from db.engine import build_engine
from db.migrate import upgrade
from db.models import ActionStep, AppSetting, CoachingGoal, Observation, School, User
from seeds.demo import seed_demo
from tests import factories as f

_n = itertools.count()
REQUIRED = {
    "schools.csv": {"id", "code", "name", "enrolment"},
    "teachers.csv": {"id", "name", "school_id", "grade_band", "subject", "coach_id", "user_id"},
    "users.csv": {"id", "username", "display_name", "email", "role", "active"},
    "user_schools.csv": {"user_id", "school_id"},
    "rubric_versions.csv": {"id", "version", "name"},
    "domains.csv": {"id", "rubric_version_id", "code", "name", "description", "look_fors"},
    "blocks.csv": {"id", "code", "name"},
    "observations.csv": {
        "id", "teacher_id", "observer", "observer_id", "observed_at", "block", "rubric_version",
        "school_id", "grade_band", "duration_min", "notes", "notes_private", "debriefed_at", "debrief_notes",
    },
    "scores.csv": {"observation_id", "domain_code", "domain_name", "score", "evidence"},
    "library.csv": {"id", "code", "domain_code", "title", "move", "look_for"},
    "action_steps.csv": {
        "id", "teacher_id", "state", "assigned_at", "check_back_on", "mastered_at", "sustained_at", "dropped_at",
    },
    "step_events.csv": {"step_id", "at", "from_state", "to_state"},
    "revisits.csv": {"step_id", "observation_id", "rating", "revisited_at", "note"},
    "goals.csv": {"teacher_id", "text", "domain_code", "set_on", "closed_on"},
    "settings.csv": {"key", "value"},
    "briefs.csv": {"teacher_id", "text"},
    "audit_log.csv": {"at", "username", "action", "entity"},
}  # fmt: skip


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


def _rounded(value):
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _states(session: Session) -> list[tuple]:
    rows = session.exec(select(ActionStep).order_by(ActionStep.id)).all()
    return [(s.id, s.teacher_id, s.state, s.mastered_at, s.sustained_at, s.dropped_at) for s in rows]


def _as_utc_tuple(rows):
    from datetime import UTC

    def fix(v):
        if isinstance(v, datetime):
            return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        return v

    return [tuple(fix(v) for v in r) for r in rows]


def small_world(session: Session) -> dict:
    """Two schools, a leader, a coach, two teachers, scored observations, steps and revisits."""
    f.rubric(session)
    north, south = f.school(session, name="North"), f.school(session, name="South")
    leader = f.user(session, "leader", schools=[north, south])
    coach = f.user(session, "coach", schools=[north])
    t1 = f.teacher(session, north, coach=coach)
    t2 = f.teacher(session, south, coach=coach, grade_band="K-2")
    o1 = f.observation(
        session, t1, coach, datetime(2025, 9, 1, 9), {"CR": 2, "SB": None, "RI": 3}, debriefed_after_h=5,
        notes="Marisol and Dashiell, line 2", private=True,
    )  # fmt: skip
    o2 = f.observation(session, t1, coach, datetime(2025, 9, 29, 9), {"CR": 3, "SB": 2}, debriefed_after_h=60)
    o3 = f.observation(session, t2, coach, datetime(2025, 9, 3, 13), {"CR": 1, "SG": 2})
    o4 = f.observation(session, t2, coach, datetime(2025, 10, 1, 13), {"CR": None})
    s1 = f.step(session, o1, "Wait time")
    s2 = f.step(session, o3, "Entry routine")
    f.revisit(session, s1, o2, "implemented")
    f.revisit(session, s2, o4, "partial")
    s1.state, s1.mastered_at = "mastered", o2.observed_at
    session.add(s1)
    session.add(
        CoachingGoal(
            teacher_id=t1.id, text="Tighter routines", domain_code="CR", set_on=o1.observed_at.date()
        )
    )
    session.add(AppSetting(key="setup_code_sha256", value="abc123secretdigest"))
    session.add(AppSetting(key="cookie_key", value="k" * 40))
    session.add(AppSetting(key="open_step_cap", value="3"))
    audit.record(session, by=leader, action="create", entity="school", entity_id=north.id, detail={"x": 1})
    session.commit()
    return {"leader": leader, "coach": coach}


@pytest.fixture
def fresh(request, tmp_path):
    """make(kind) -> a session on a new, migrated, empty database of that backend."""
    made = []

    def make(kind: str) -> Session:
        name = f"x{os.getpid()}_{next(_n)}"
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / name}.db"
        else:
            url = request.getfixturevalue("pg_server").create_database(name)
        engine = build_engine(url)
        upgrade(engine)
        s = Session(engine, expire_on_commit=False)
        made.append((s, engine, kind, name))
        return s

    yield make
    for s, engine, kind, name in made:
        s.close()
        engine.dispose()
        if kind == "postgresql":
            request.getfixturevalue("pg_server").drop_database(name)


def test_export_writes_one_csv_per_table_with_the_promised_columns(session, tmp_path):
    small_world(session)
    paths = export_dir(session=session, out_dir=tmp_path / "out")
    names = {p.name for p in paths}
    assert set(REQUIRED) | {"data_dictionary.md"} <= names
    for name, columns in REQUIRED.items():
        header = _header(tmp_path / "out" / name)
        assert columns <= set(header), (name, columns - set(header))
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in header), header
    assert len(_read(tmp_path / "out" / "observations.csv")) == 4


def test_export_without_credentials_has_no_password_hash_and_never_a_secret(session, tmp_path):
    small_world(session)
    export_dir(session=session, out_dir=tmp_path / "out")
    assert "password_hash" not in _header(tmp_path / "out" / "users.csv")
    everything = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir())
    assert "$2b$" not in everything
    assert "abc123secretdigest" not in everything and "k" * 40 not in everything
    keys = {r["key"] for r in _read(tmp_path / "out" / "settings.csv")}
    assert keys == {"open_step_cap"}


def test_export_with_credentials_includes_the_password_hashes_but_no_cookie_key(session, tmp_path):
    small_world(session)
    export_dir(session=session, out_dir=tmp_path / "out", with_credentials=True)
    users = _read(tmp_path / "out" / "users.csv")
    assert users and all(u["password_hash"].startswith("$2b$") for u in users)
    assert "k" * 40 not in (tmp_path / "out" / "settings.csv").read_text()


def test_the_data_dictionary_describes_every_column_of_every_file(session, tmp_path):
    small_world(session)
    export_dir(session=session, out_dir=tmp_path / "out")
    text = (tmp_path / "out" / "data_dictionary.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\S+\.csv)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    for path in (tmp_path / "out").glob("*.csv"):
        assert path.name in sections, path.name
        for column in _header(path):
            assert re.search(rf"^\| {column} \| [^|]+ \| [^|]+ \|$", sections[path.name], flags=re.M), (
                path.name,
                column,
            )


def test_exported_times_are_iso_8601_with_offset_and_not_observed_scores_are_blank(session, tmp_path):
    small_world(session)
    export_dir(session=session, out_dir=tmp_path / "out")
    obs = _read(tmp_path / "out" / "observations.csv")
    first = min(obs, key=lambda r: int(r["id"]))
    assert datetime.fromisoformat(first["observed_at"]).utcoffset() is not None
    assert first["observed_at"] == "2025-09-01T16:00:00+00:00"  # 09:00 in Los Angeles
    assert first["observer"].startswith("coach") and first["block"] == "WG" and first["rubric_version"] == "1"
    assert any(r["debriefed_at"] == "" for r in obs)
    scores = _read(tmp_path / "out" / "scores.csv")
    sb = next(r for r in scores if r["observation_id"] == first["id"] and r["domain_code"] == "SB")
    assert sb["score"] == "" and sb["domain_name"] == "Safety & Behavior"
    steps = _read(tmp_path / "out" / "action_steps.csv")
    assert {s["state"] for s in steps} == {"open", "mastered"}


@pytest.mark.parametrize("with_credentials", [False, True])
def test_a_restored_database_gives_the_same_metrics_step_states_and_ids_on_the_other_backend(
    session, database_url, tmp_path, fresh, with_credentials
):
    small_world(session)
    export_dir(session=session, out_dir=tmp_path / "out", with_credentials=with_credentials)
    target = fresh("postgresql" if database_url.startswith("sqlite") else "sqlite")

    loaded = restore_dir(session=target, in_dir=tmp_path / "out")

    assert loaded["observations.csv"] == 4
    assert _rounded(program_metrics(session=target)) == _rounded(program_metrics(session=session))
    assert _as_utc_tuple(_states(target)) == _as_utc_tuple(_states(session))
    src_obs = session.exec(select(Observation.id, Observation.notes).order_by(Observation.id)).all()
    assert target.exec(select(Observation.id, Observation.notes).order_by(Observation.id)).all() == src_obs
    users = target.exec(select(User)).all()
    if with_credentials:
        assert all(u.password_hash and not u.must_change_password for u in users)
        assert f.password_hash() in {u.password_hash for u in users}
    else:
        assert all(u.password_hash is None and u.must_change_password for u in users)
    # Id sequences continue after the restored ids.
    school = School(code="NEW", name="New school")
    target.add(school)
    target.commit()
    assert school.id > max(s.id for s in session.exec(select(School)).all())


def test_restore_refuses_a_database_that_already_has_data(session, tmp_path):
    small_world(session)
    export_dir(session=session, out_dir=tmp_path / "out")
    with pytest.raises(CoachloopError, match="empty database"):
        restore_dir(session=session, in_dir=tmp_path / "out")


def test_restore_refuses_a_folder_that_is_not_an_export(session, tmp_path):
    (tmp_path / "junk").mkdir()
    with pytest.raises(CoachloopError, match="does not look like"):
        restore_dir(session=session, in_dir=tmp_path / "junk")


def test_the_demo_survives_a_round_trip_from_sqlite_to_postgresql(tmp_path, fresh):
    source = fresh("sqlite")
    seed_demo(session=source)
    export_dir(session=source, out_dir=tmp_path / "demo")
    target = fresh("postgresql")

    restore_dir(session=target, in_dir=tmp_path / "demo")

    before, after = program_metrics(session=source), program_metrics(session=target)
    assert after["observations"] == 1781 and after["action_steps"] == 2185
    assert _rounded(after) == _rounded(before)
    assert _as_utc_tuple(_states(target)) == _as_utc_tuple(_states(source))
