"""`python -m coaching` as a real subprocess: every command, and bad input that must end with one
clear line on stderr, exit code 2 and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from coaching.metrics import METRIC_KEYS
from coaching.users import check_password
from db.engine import build_engine
from db.models import AuditLog, Observation, RubricVersion, User, UserSchool
from tests import factories as f

ROOT = Path(__file__).resolve().parents[1]


def run(url: str, *args: str, password: str | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COACHLOOP_PASSWORD"}
    env["DATABASE_URL"] = url
    if password is not None:
        env["COACHLOOP_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "coaching", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def count(url: str, model) -> int:
    engine = build_engine(url)
    try:
        with Session(engine) as s:
            return s.exec(select(func.count()).select_from(model)).one()
    finally:
        engine.dispose()


def assert_bad_input(result: subprocess.CompletedProcess, *, mentions: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert mentions.lower() in lines[0].lower(), lines[0]


@pytest.fixture
def small(sqlite_session, sqlite_url):
    f.rubric(sqlite_session)
    school = f.school(sqlite_session, name="North")
    coach = f.user(sqlite_session, "coach", schools=[school], username="existing")
    t = f.teacher(sqlite_session, school, coach=coach)
    f.observation(sqlite_session, t, coach, datetime(2025, 9, 1, 9), {"CR": 2, "SB": 3}, debriefed_after_h=3)
    f.observation(sqlite_session, t, coach, datetime(2025, 10, 1, 9), {"CR": 4}, debriefed_after_h=3)
    return sqlite_url, school


def test_help_lists_every_command():
    result = run("sqlite:///unused.db", "--help")
    assert result.returncode == 0
    for command in ("init-db", "seed-demo", "create-user", "set-password", "metrics", "export", "restore"):
        assert command in result.stdout


def test_init_db_creates_and_migrates_a_new_database_with_the_default_rubric(tmp_path):
    url = f"sqlite:///{tmp_path}/new/coachloop.db"
    result = run(url, "init-db")
    assert result.returncode == 0, result.stderr
    assert count(url, RubricVersion) == 1
    assert run(url, "init-db").returncode == 0  # again: nothing to do
    assert count(url, RubricVersion) == 1


def test_seed_demo_prints_demo_only_accounts_is_idempotent_and_metrics_json_has_every_key(database_url):
    first = run(database_url, "seed-demo")
    assert first.returncode == 0, first.stderr
    assert "DEMO ONLY" in first.stdout and "coachloop-demo" in first.stdout
    assert "demo-admin" in first.stdout and "demo-leader" in first.stdout and "demo-coach1" in first.stdout

    again = run(database_url, "seed-demo")
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert count(database_url, Observation) == 1781

    metrics = run(database_url, "metrics", "--json")
    assert metrics.returncode == 0, metrics.stderr
    figures = json.loads(metrics.stdout)
    assert tuple(figures) == METRIC_KEYS
    assert figures["observations"] == 1781 and figures["action_steps"] == 2185
    assert figures["start_score"] == pytest.approx(2.29, abs=0.05)
    assert figures["end_score"] == pytest.approx(2.73, abs=0.05)


def test_seed_demo_reset_reloads_the_demo(sqlite_url):
    assert run(sqlite_url, "seed-demo").returncode == 0
    result = run(sqlite_url, "seed-demo", "--reset")
    assert result.returncode == 0, result.stderr
    assert "Loaded the demo" in result.stdout
    assert count(sqlite_url, Observation) == 1781


def test_metrics_prints_a_table_and_honours_the_window_and_school(small):
    url, school = small
    table = run(url, "metrics")
    assert table.returncode == 0, table.stderr
    assert "Observations" in table.stdout and "Culture & Routines" in table.stdout
    assert "2025-08-01 to 2026-07-31" in table.stdout

    sept = json.loads(run(url, "metrics", "--json", "--from", "2025-09-01", "--to", "2025-09-30").stdout)
    assert sept["window"] == {"from": "2025-09-01", "to": "2025-09-30"}
    assert sept["observations"] == 1

    mine = json.loads(run(url, "metrics", "--json", "--school", school.code).stdout)
    assert mine["observations"] == 2 and mine["start_score"] == pytest.approx(2.5)


def test_create_user_takes_the_password_from_the_environment(small):
    url, school = small
    result = run(
        url, "create-user", "--username", "lee", "--role", "leader", "--name", "Lee Park",
        "--email", "lee@example.org", "--school", school.code, password="a-long-password",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    engine = build_engine(url)
    with Session(engine) as s:
        user = s.exec(select(User).where(User.username == "lee")).one()
        assert user.role == "leader" and user.display_name == "Lee Park"
        assert check_password("a-long-password", user.password_hash)
        assert s.exec(select(UserSchool.school_id).where(UserSchool.user_id == user.id)).all() == [school.id]
    engine.dispose()


def test_set_password_gives_a_locked_out_user_a_new_password_unlocks_them_and_is_audited(small):
    url, _ = small
    engine = build_engine(url)
    with Session(engine) as s:
        user = s.exec(select(User).where(User.username == "existing")).one()
        user.locked, user.failed_logins, user.password_hash = True, 5, None
        s.add(user)
        s.commit()
    result = run(url, "set-password", "--username", "Existing", password="another-long-password")
    assert result.returncode == 0, result.stderr
    assert "another-long-password" not in result.stdout + result.stderr
    with Session(engine) as s:
        user = s.exec(select(User).where(User.username == "existing")).one()
        assert check_password("another-long-password", user.password_hash)
        assert not user.locked and user.failed_logins == 0
        entry = s.exec(select(AuditLog).where(AuditLog.action == "reset_password")).one()
        assert entry.entity_id == str(user.id) and entry.user_id is None
    engine.dispose()


@pytest.mark.parametrize(
    "username, password, mentions",
    [("nobody", "another-long-password", "nobody"), ("existing", "short", "password")],
)
def test_set_password_refuses_an_unknown_user_or_a_weak_password_and_changes_nothing(
    small, username, password, mentions
):
    url, _ = small
    audits = count(url, AuditLog)
    assert_bad_input(run(url, "set-password", "--username", username, password=password), mentions=mentions)
    assert count(url, AuditLog) == audits


BAD_CREATE = [
    (["--username", "x", "--role", "boss", "--name", "X"], "a-long-password", "unknown role"),
    (["--username", "existing", "--role", "coach", "--name", "X"], "a-long-password", "already taken"),
    (["--username", "x", "--role", "coach", "--name", "X"], "", "empty"),
    (["--username", "x", "--role", "coach", "--name", "X"], None, "COACHLOOP_PASSWORD"),
    (["--username", "x", "--role", "coach", "--name", "X", "--school", "NOPE"], "a-long-password", "NOPE"),
    (
        ["--username", "x", "--role", "coach", "--name", "X", "--password", "pw"],
        "a-long-password",
        "unrecognized",
    ),
]


@pytest.mark.parametrize("args, password, mentions", BAD_CREATE)
def test_bad_create_user_input_fails_with_one_line_and_writes_nothing(small, args, password, mentions):
    url, _ = small
    users, audits = count(url, User), count(url, AuditLog)
    result = run(url, "create-user", *args, password=password)
    assert_bad_input(result, mentions=mentions)
    assert (count(url, User), count(url, AuditLog)) == (users, audits)


@pytest.mark.parametrize(
    "args, mentions",
    [
        (["--from", "2025-13-01"], "not a date"),
        (["--from", "2025-10-01", "--to", "2025-09-01"], "after"),
        (["--school", "NOPE"], "NOPE"),
    ],
)
def test_bad_metrics_input_fails_with_one_line(small, args, mentions):
    url, _ = small
    assert_bad_input(run(url, "metrics", *args), mentions=mentions)


@pytest.mark.parametrize(
    "url, mentions",
    [
        ("this is not a url", "DATABASE_URL"),
        ("mysql://someone@localhost/coachloop", "unsupported"),
        ("postgresql://postgres@127.0.0.1:1/coachloop", "cannot reach"),
    ],
)
def test_an_unusable_database_url_fails_with_one_line(url, mentions):
    result = run(
        url, "create-user", "--username", "x", "--role", "admin", "--name", "X", password="a-long-password"
    )
    assert_bad_input(result, mentions=mentions)
    assert_bad_input(run(url, "metrics"), mentions=mentions)


def test_export_and_restore_through_the_cli(small, tmp_path):
    url, _ = small
    out = tmp_path / "export"
    result = run(url, "export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "observations.csv").exists() and (out / "data_dictionary.md").exists()
    assert "$2b$" not in (out / "users.csv").read_text()

    with_hashes = tmp_path / "backup"
    assert run(url, "export", "--out", str(with_hashes), "--with-credentials").returncode == 0
    assert "$2b$" in (with_hashes / "users.csv").read_text()

    target = f"sqlite:///{tmp_path}/restored.db"
    restored = run(target, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert count(target, Observation) == 2
    before = json.loads(run(url, "metrics", "--json").stdout)
    assert json.loads(run(target, "metrics", "--json").stdout) == before

    assert_bad_input(run(target, "restore", str(out)), mentions="empty database")
    assert_bad_input(run(target, "restore", str(tmp_path / "missing")), mentions="not a folder")
    assert count(target, Observation) == 2
