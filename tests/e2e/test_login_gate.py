"""In a real browser: nobody unsigned sees anything but the login form, and a signed-in coach stays
signed in across a reload (the auth cookie)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LONG, SHORT, login_form, sign_in, signed_in
from ui.nav import PAGES

pytestmark = pytest.mark.e2e
COOKIE_NAME = "coachloop_auth"  # the default COACHLOOP_COOKIE_NAME


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


def _auth_cookie(page, timeout_ms: int = SHORT) -> dict:
    """The auth cookie once the browser holds it (the writer component sets it from JavaScript)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        found = [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
        if found:
            return found[0]
        page.wait_for_timeout(100)
    raise AssertionError(f"the browser never received the {COOKIE_NAME} cookie")


def test_a_coach_signs_in_and_a_reload_keeps_them_signed_in(app_server, page, shot):
    sign_in(page, app_server.url, app_server.accounts.coach)
    shot(page, "signed-in")
    cookie = _auth_cookie(page)
    assert cookie["path"] == "/" and cookie["sameSite"] == "Strict"
    assert cookie["expires"] > time.time() + 6 * 86400  # default expiry: 7 days
    page.reload(timeout=LONG)
    signed_in(page, timeout=LONG)
    expect(page.get_by_label("Username", exact=True)).to_have_count(0)
    shot(page, "after-reload")


def test_moving_to_another_page_at_once_after_signing_in_lands_and_keeps_the_cookie(app_server, page):
    sign_in(page, app_server.url, app_server.accounts.coach)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Heatmap").click()
    # The first click after signing in lands (an extra rerun from the cookie writer once undid it).
    expect(page.get_by_role("heading", name="Domain heatmap").first).to_be_visible(timeout=SHORT)
    _auth_cookie(page)
    page.reload(timeout=LONG)
    signed_in(page, timeout=LONG)


def test_a_signed_out_coach_stays_signed_out_after_a_reload(app_server, page, shot):
    sign_in(page, app_server.url, app_server.accounts.coach)
    _auth_cookie(page)
    signed_in(page).click()
    user, _ = login_form(page)
    expect(user).to_be_visible()
    deadline = time.monotonic() + SHORT / 1000
    while any(c["name"] == COOKIE_NAME for c in page.context.cookies()):
        assert time.monotonic() < deadline, "signing out did not delete the auth cookie"
        page.wait_for_timeout(100)
    page.reload(timeout=LONG)
    user, _ = login_form(page)
    expect(user).to_be_visible()
    page.wait_for_timeout(750)  # a restored session would draw the sidebar by now
    assert page.get_by_role("button", name=re.compile("Sign out|Log out|Logout")).count() == 0
    shot(page, "signed-out-after-reload")
