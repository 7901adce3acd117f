"""Every page runs for every role that may open it, and nobody unsigned sees anything but the login."""

from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from db.engine import get_engine
from tests import factories
from ui.nav import PAGES

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def people(sqlite_url):
    with Session(get_engine()) as s:
        factories.rubric(s)
        school = factories.school(s)
        users = {r: factories.user(s, r, schools=[school]) for r in ("admin", "leader", "coach")}
        tlogin = factories.user(s, "teacher")
        factories.teacher(s, school, coach=users["coach"], login=tlogin)
        users["teacher"] = tlogin
        return {r: u.id for r, u in users.items()}


def test_signed_out_visitors_see_only_the_login_form(people):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]


@pytest.mark.parametrize("spec", PAGES, ids=lambda p: p.file)
def test_every_page_runs_for_each_role_that_may_open_it(people, spec):
    for role in spec.roles:
        at = AppTest.from_file(APP, default_timeout=30)
        at.session_state["user_id"] = people[role]
        at.run()
        at.switch_page(spec.file).run()
        assert not at.exception, (role, spec.file, at.exception)
