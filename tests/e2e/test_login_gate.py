"""In a real browser: nobody unsigned sees anything but the login form, and a signed-in coach stays
signed in across a reload (the auth cookie)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LONG, login_form, sign_in, signed_in
from ui.nav import PAGES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("spec", PAGES, ids=lambda p: Path(p.file).stem)
def test_a_direct_url_without_signing_in_shows_only_the_login_form(app_server, page, shot, spec):
    path = Path(spec.file).stem  # Streamlit's url path of a page is its file's stem
    page.goto(f"{app_server.url}/{path}", timeout=LONG)
    user, password = login_form(page)
    expect(password).to_be_visible()
    page.wait_for_timeout(750)  # let the cookie component's extra rerun finish
    expect(user).to_be_visible()
    shot(page, f"direct-{path}")
    assert page.get_by_role("button", name=re.compile("Sign out|Log out|Logout")).count() == 0
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    assert page.get_by_role("heading", name=spec.title, exact=True).count() == 0
    assert "Please sign in" not in page.content() or page.get_by_label("Username", exact=True).is_visible()


def test_a_wrong_password_is_refused_with_a_message_and_no_page_content(app_server, page, shot):
    page.goto(app_server.url, timeout=LONG)
    user, password = login_form(page)
    user.fill(app_server.accounts.coach)
    password.fill("not-the-password")
    page.get_by_role("button", name=re.compile(r"^(Login|Log in|Sign in)$")).click()
    expect(page.get_by_text(re.compile("incorrect", re.I)).first).to_be_visible()
    shot(page, "refused")
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0


@pytest.mark.xfail(strict=False, reason="KNOWN DEFECT (issue 6 left open): in the full e2e session the auth cookie is not restored after a reload")
def test_a_coach_signs_in_and_a_reload_keeps_them_signed_in(app_server, page, shot):
    sign_in(page, app_server.url, app_server.accounts.coach)
    shot(page, "signed-in")
    page.reload(timeout=LONG)
    signed_in(page, timeout=LONG)
    expect(page.get_by_label("Username", exact=True)).to_have_count(0)
    shot(page, "after-reload")
