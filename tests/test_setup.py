"""First run: the one-time setup code creates the first admin (and nothing else), the command line
creates one too, and the demo is never loaded from a button."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import func, select

from coaching import setup, users
from coaching.errors import PermissionDenied, ValidationError
from db.models import AppSetting, AuditLog, User
from tests import factories

ROOT = Path(__file__).resolve().parents[1]


def test_an_empty_install_gets_a_setup_code_of_which_only_a_hash_is_stored(session):
    code = setup.ensure_setup_code(session=session)
    assert code and re.fullmatch(r"[0-9a-f]{6}(-[0-9a-f]{6}){2}", code)
    stored = session.get(AppSetting, setup.SETUP_KEY).value
    assert code not in stored and len(stored) == 64


def test_a_second_start_replaces_the_code_so_an_old_log_line_is_useless(session):
    first = setup.ensure_setup_code(session=session)
    second = setup.ensure_setup_code(session=session)
    assert first != second
    with pytest.raises(ValidationError, match="setup code"):
        setup.create_first_admin(
            session=session, code=first, username="a", display_name="A", password="long-enough-pw"
        )


def test_no_setup_code_once_a_user_exists(session):
    factories.user(session, "coach")
    assert setup.ensure_setup_code(session=session) is None


def test_the_right_code_creates_the_first_admin_once_and_then_expires(session):
    code = setup.ensure_setup_code(session=session)
    with pytest.raises(ValidationError):
        setup.create_first_admin(
            session=session,
            code="000000-000000-000000",
            username="root",
            display_name="Root",
            password="long-enough-pw",
        )
    assert session.exec(select(func.count()).select_from(User)).one() == 0
    admin = setup.create_first_admin(
        session=session, code=f"  {code} ", username="Root", display_name="Root", password="long-enough-pw"
    )
    assert admin.role == "admin" and admin.username == "root"
    assert users.authenticate(session=session, username="root", password="long-enough-pw").id == admin.id
    assert session.get(AppSetting, setup.SETUP_KEY) is None
    row = session.exec(select(AuditLog).where(AuditLog.action == "setup")).one()
    assert code not in row.detail
    with pytest.raises(PermissionDenied):
        setup.create_first_admin(
            session=session, code=code, username="x", display_name="X", password="long-enough-pw"
        )


def test_the_first_admin_needs_a_valid_password(session):
    code = setup.ensure_setup_code(session=session)
    with pytest.raises(ValidationError, match="at least"):
        setup.create_first_admin(
            session=session, code=code, username="root", display_name="Root", password="short"
        )
    assert session.get(AppSetting, setup.SETUP_KEY) is not None  # still usable


def test_start_up_logs_the_setup_code_once_and_never_a_hash(sqlite_url, caplog):
    from ui.startup import boot

    caplog.set_level(logging.INFO)
    boot()
    lines = [r.getMessage() for r in caplog.records if "setup code" in r.getMessage()]
    assert len(lines) == 1
    assert "$2b$" not in caplog.text


def test_the_command_line_creates_the_first_admin_who_can_sign_in(sqlite_url, sqlite_session):
    session = sqlite_session
    env = {**os.environ, "DATABASE_URL": sqlite_url, "COACHLOOP_PASSWORD": "cli-password-123"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coaching",
            "create-user",
            "--role",
            "admin",
            "--username",
            "Chief",
            "--name",
            "Chief Admin",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "cli-password-123" not in done.stdout + done.stderr
    assert "$2b$" not in done.stdout + done.stderr
    user = users.authenticate(session=session, username="chief", password="cli-password-123")
    assert user.role == "admin"
    assert setup.ensure_setup_code(session=session) is None


def test_no_page_loads_the_demo_from_a_button():
    # The demo is loaded by COACHLOOP_DEMO=1 at start-up or `python -m coaching seed-demo`, never
    # from the browser, where a click could mix invented people into real records.
    for page in sorted((ROOT / "app_pages").glob("*.py")):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"seed_demo|seeds\.demo|from seeds", text), page.name
