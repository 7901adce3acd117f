# ruff: noqa: F811  (pytest fixtures imported from tests/fake_llm.py are used as arguments)
"""The prep-brief page under AppTest (offline and against the fake LLM server) and the
`python -m coaching brief` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from coaching import brief
from coaching.settings import get_settings
from tests import factories
from tests._brief_helpers import COACH_NAME, SCHOOL_NAME, STUDENTS, TEACHER_NAME, goal, history, world
from tests.fake_llm import INVENTED_NUMBER, fake_llm, llm_env  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


@pytest.fixture
def w(sqlite_session):
    w = world(sqlite_session)
    obs = history(sqlite_session, w, 5)
    st = factories.step(sqlite_session, obs[-3], "Wait three seconds")
    factories.revisit(sqlite_session, st, obs[-1], "partial")
    goal(sqlite_session, w)
    return w


@pytest.fixture
def no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    get_settings.cache_clear()


def _open(user_id: int, teacher_id: int | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = user_id
    at.run()
    if teacher_id is not None:
        at.query_params["teacher"] = str(teacher_id)
    at.switch_page("app_pages/brief.py").run()
    assert not at.exception, at.exception
    return at


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _text(at: AppTest) -> str:
    return "\n".join(
        [m.value for m in at.markdown] + [x.value for x in at.warning] + [x.value for x in at.info]
    )


def test_offline_the_page_shows_a_template_brief_and_why(w, no_key):
    at = _open(w.coach.id, w.teacher.id)
    assert at.selectbox[0].value == w.teacher.id
    assert "No LLM is configured" in at.caption[0].value
    _button(at, "Prepare brief").click().run()
    assert not at.exception, at.exception
    text = _text(at)
    assert f"# Prep brief: {TEACHER_NAME}" in text
    assert "Offline brief: no LLM is configured" in text
    assert "Nothing: this brief was written offline" in text
    assert [e.label for e in at.expander] == ["What was sent"]
    assert len(at.get("download_button")) == 1


def test_with_the_fake_llm_the_page_streams_shows_what_was_sent_and_flags_inventions(w, llm_env):
    llm_env.mode = "invent"
    at = _open(w.coach.id, w.teacher.id)
    _button(at, "Prepare brief").click().run()
    assert not at.exception, at.exception
    assert len(llm_env.requests) == 1
    text = _text(at)
    assert TEACHER_NAME in text and "Teacher T1" not in text.split("What was sent")[0]
    assert "not in the records" in text and INVENTED_NUMBER in text
    (code,) = at.code
    assert "Teacher T1" in code.value and "<<<BEGIN FACTS>>>" in code.value
    for secret in (TEACHER_NAME, COACH_NAME, SCHOOL_NAME, *STUDENTS):
        assert secret not in code.value
    (status,) = at.get("status")
    assert status.label == "Brief ready"
    assert TEACHER_NAME in status.children[0].value  # the text streamed inside the progress box
    # A second press reuses the saved brief: no new request.
    _button(at, "Prepare brief").click().run()
    assert len(llm_env.requests) == 1 and "have not changed" in _text(at)
    _button(at, "Regenerate").click().run()
    assert len(llm_env.requests) == 2
    assert len(at.selectbox[1].options) == 2


@pytest.mark.parametrize("mode", ["slow", "429", "500", "malformed"])
def test_a_failing_llm_still_shows_a_brief_on_the_page(w, llm_env, mode):
    llm_env.mode = mode
    llm_env.slow_s = 2.5
    at = _open(w.coach.id, w.teacher.id)
    _button(at, "Prepare brief").click().run()
    assert not at.exception, at.exception
    text = _text(at)
    assert f"# Prep brief: {TEACHER_NAME}" in text and "Offline brief:" in text
    (status,) = at.get("status")
    assert status.label == "The LLM failed: showing the offline brief"


def test_teachers_and_leaders_cannot_open_the_page(w, no_key):
    for user in (w.teacher_login, w.leader):
        at = AppTest.from_file(APP, default_timeout=30)
        at.session_state["user_id"] = user.id
        at.run()
        with pytest.raises(ValueError):
            at.switch_page("app_pages/brief.py")


def test_a_coach_only_sees_their_own_teachers(w, no_key):
    at = _open(w.coach.id, w.other_teacher.id)  # not theirs: the selection falls back
    assert at.selectbox[0].options == [TEACHER_NAME] and at.selectbox[0].value == w.teacher.id


def _cli(url: str, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["DATABASE_URL"] = url
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "coaching", "brief", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_the_cli_prints_the_offline_brief(w, sqlite_url):
    out = _cli(sqlite_url, "--teacher", str(w.teacher.id), "--offline", "--as", w.coach.username)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"# Prep brief: {TEACHER_NAME}")
    assert "offline mode was requested" in out.stdout


def test_the_cli_uses_the_llm_and_then_reuses_the_saved_brief(w, sqlite_url, fake_llm):
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake_llm.base_url, "COACHLOOP_LLM_RETRIES": "0"}
    first = _cli(sqlite_url, "--teacher", str(w.teacher.id), env_extra=env)
    assert first.returncode == 0, first.stderr
    assert TEACHER_NAME in first.stdout and "written by" in first.stdout
    again = _cli(sqlite_url, "--teacher", str(w.teacher.id), env_extra=env)
    assert again.stdout == first.stdout and "reused" in again.stderr
    assert len(fake_llm.requests) == 1


def test_the_cli_refuses_a_teacher_outside_the_users_scope(w, sqlite_url):
    out = _cli(sqlite_url, "--teacher", str(w.other_teacher.id), "--as", w.coach.username, "--offline")
    assert out.returncode == 2 and "not in your caseload" in out.stderr
    assert out.stdout == ""


def test_briefs_saved_by_the_cli_are_listed_for_the_page(w, sqlite_url, sqlite_session):
    assert _cli(sqlite_url, "--teacher", str(w.teacher.id), "--offline").returncode == 0
    assert len(brief.list_briefs(session=sqlite_session, user=w.coach, teacher_id=w.teacher.id)) == 1


def test_an_older_saved_brief_can_be_chosen_and_labels_tell_briefs_apart(w, no_key, sqlite_session):
    at = _open(w.coach.id, w.teacher.id)
    _button(at, "Prepare brief").click().run()
    _button(at, "Regenerate").click().run()
    _button(at, "Regenerate").click().run()
    assert not at.exception, at.exception
    box = next(b for b in at.selectbox if b.label == "Saved briefs")
    labels = box.options
    assert len(labels) == 3 and len(set(labels)) == 3  # three briefs made within a second or so
    assert labels[0].startswith("3. ") and labels[-1].startswith("1. ")  # newest first, numbered
    assert "UTC" not in labels[0]  # school-local time, like the rest of the app
    saved = brief.list_briefs(session=sqlite_session, user=w.coach, teacher_id=w.teacher.id)
    oldest = min(b.id for b in saved)
    sqlite_session.rollback()  # end the read transaction (the engine begins IMMEDIATE) before the app writes
    box.set_value(oldest).run()  # this crashed: the choice was made inside a generator
    assert not at.exception, at.exception
    assert next(b for b in at.selectbox if b.label == "Saved briefs").value == oldest
    assert TEACHER_NAME in _text(at)
