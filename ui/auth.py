"""Sign-in (streamlit-authenticator over the users table), cookie restore on reload, and sign-out.

The library checks the password against credentials built from the database on each run; the
database keeps the failed-attempt counter and the lock (coaching/users.py), so every app process
agrees. Cookie restore is ours (`restore_session`), so that a locked or deactivated user's cookie
stops working at once.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st
import streamlit_authenticator as stauth
from sqlmodel import select

from coaching import auth_keys, setup, users
from coaching.errors import CoachloopError, ConfigError
from coaching.settings import get_settings
from db import get_session
from db.models import User
from ui.guard import SESSION_USER_KEY, current_user

SIGNED_OUT_KEY = "_coachloop_signed_out"  # the old cookie is still in this session's headers
WRITE_COOKIE_KEY = "_coachloop_write_cookie"
PENDING_COOKIE_KEY = "_coachloop_cookie_pending"  # the token being written, the same on each run
COOKIE_SCRIPT_RUNS = 3
DELETE_COOKIE_KEY = "_coachloop_delete_cookie"
NOTICE_KEY = "_coachloop_login_notice"
_LIBRARY_KEYS = ("name", "username", "authentication_status", "email", "roles")


def _secret_cookie_key() -> str | None:
    try:
        return st.secrets.get("COACHLOOP_COOKIE_KEY") or st.secrets.get("cookie_key")
    except Exception:  # no secrets.toml (Streamlit raises its own not-found error types)
        return None


def _credentials(session) -> dict[str, Any]:
    rows = session.exec(
        select(User).where(User.active == True, User.password_hash.is_not(None))  # noqa: E712
    ).all()
    return {
        "usernames": {
            u.username.lower(): {
                "name": u.display_name,
                "email": u.email or "",
                "password": u.password_hash,
                "roles": [u.role],
                "failed_login_attempts": 0,
                "logged_in": False,
            }
            for u in rows
        }
    }


def _authenticator(session, *, with_credentials: bool = True) -> stauth.Authenticate:
    settings = get_settings()
    key = auth_keys.cookie_key(session=session, secret_value=_secret_cookie_key())
    creds = _credentials(session) if with_credentials else {"usernames": {}}
    return stauth.Authenticate(
        copy.deepcopy(creds),  # the library mutates what it is given
        settings.cookie_name,
        key,
        settings.cookie_expiry_days,
        auto_hash=False,
        login_sleep_time=0,
    )


def _stop_on_config_error(exc: ConfigError) -> None:
    st.error(f"Coachloop cannot sign anyone in. {exc}")
    st.caption("Fix the setting and restart the app.")
    st.stop()


def _reset_library_state() -> None:
    for k in _LIBRARY_KEYS:
        st.session_state[k] = None


def restore_session() -> None:
    """Sign this browser session in from a valid auth cookie (active, unlocked users only)."""
    if st.session_state.get(SESSION_USER_KEY) is not None or st.session_state.get(SIGNED_OUT_KEY):
        return
    try:
        token = st.context.cookies.get(get_settings().cookie_name)
    except Exception:  # no browser context (bare mode, some test harnesses)
        return
    if not token or not isinstance(token, str):
        return
    try:
        with get_session() as session:
            key = auth_keys.cookie_key(session=session, secret_value=_secret_cookie_key())
            user = auth_keys.user_for_token(session=session, token=token, key=key)
    except ConfigError as exc:
        _stop_on_config_error(exc)
        return
    if user is not None:
        st.session_state[SESSION_USER_KEY] = user.id
        st.session_state["username"] = user.username


def _cookie_script(name: str, value: str, expires_ms: int) -> str:
    # json.dumps makes JS string literals; "<" is escaped so nothing can close the script tag.
    def lit(text: str) -> str:
        return json.dumps(text).replace("<", "\\u003c")

    return (
        "<script>document.cookie = " + lit(name + "=") + " + " + lit(value)
        + ' + "; path=/; SameSite=Strict; expires=" + new Date(' + str(int(expires_ms)) + ").toUTCString()"
        + ' + (location.protocol === "https:" ? "; Secure" : "");</script>'
    )


def _run_cookie_script(script: str, where=st.sidebar) -> None:
    # st.html runs its script in the page itself when drawn: no component iframe to load, and no
    # value sent back, so no extra rerun that could swallow the user's first click. In the sidebar
    # of the signed-in app, so the page layout does not move.
    where.html(script, unsafe_allow_javascript=True)


def finish_login() -> None:
    """After a sign-in, write the auth cookie from the page on the next few runs (drawing it once is
    enough; the repeats cover a rerun that replaces the first draw before the browser mounts it).
    The same token and expiry each time."""
    runs = st.session_state.get(WRITE_COOKIE_KEY) or 0
    if not runs:
        return
    username = st.session_state.get("username")
    settings = get_settings()
    if not username or settings.cookie_expiry_days <= 0:  # expiry 0: sessions end with the tab
        st.session_state.pop(WRITE_COOKIE_KEY, None)
        return
    pending = st.session_state.get(PENDING_COOKIE_KEY)
    if not pending or pending.get("username") != username:
        try:
            with get_session() as session:
                key = auth_keys.cookie_key(session=session, secret_value=_secret_cookie_key())
        except ConfigError as exc:
            _stop_on_config_error(exc)
            return
        token = auth_keys.make_token(username, key, expiry_days=settings.cookie_expiry_days)
        expires = datetime.now(UTC) + timedelta(days=settings.cookie_expiry_days)
        pending = {"username": username, "token": token, "expires_ms": expires.timestamp() * 1000}
        st.session_state[PENDING_COOKIE_KEY] = pending
    _run_cookie_script(_cookie_script(settings.cookie_name, pending["token"], pending["expires_ms"]))
    if runs <= 1:
        st.session_state.pop(WRITE_COOKIE_KEY, None)
        st.session_state.pop(PENDING_COOKIE_KEY, None)
    else:
        st.session_state[WRITE_COOKIE_KEY] = runs - 1


def _render_setup() -> None:
    st.info(
        "Coachloop has no users yet. Whoever runs the server creates the first admin, either on the "
        "command line:\n\n"
        "`COACHLOOP_PASSWORD=... python -m coaching create-user --role admin --username U --name N`"
        "\n\nor here, with the one-time setup code printed in the server log at start-up."
    )
    with st.form("first_admin"):
        st.subheader("Create the first admin")
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        repeat = st.text_input("Repeat password", type="password")
        display_name = st.text_input("Display name")
        code = st.text_input("Setup code", help="Printed in the server log when the app started.")
        submitted = st.form_submit_button("Create admin")
    if not submitted:
        return
    if password != repeat:
        st.error("The two passwords differ.")
        return
    try:
        with get_session() as session:
            setup.create_first_admin(
                session=session,
                code=code,
                username=username,
                display_name=display_name,
                password=password,
            )
    except CoachloopError as exc:
        st.error(str(exc))
        return
    st.session_state[NOTICE_KEY] = "The admin account is ready: sign in with it."
    st.rerun()


def render_login() -> None:
    """The sign-in page: the first-admin setup form on an empty install, else the login form."""
    st.title("Coachloop")
    if st.session_state.get(SESSION_USER_KEY) is None:
        _reset_library_state()  # a session ended elsewhere (deactivated) must see the form again
    try:
        with get_session() as session:
            empty = not setup.has_users(session)
            authenticator = None if empty else _authenticator(session)
    except ConfigError as exc:
        _stop_on_config_error(exc)
        return
    if authenticator is None:
        _render_setup()
        return
    if notice := st.session_state.pop(NOTICE_KEY, None):
        st.success(notice)
    if runs := st.session_state.get(DELETE_COOKIE_KEY):
        expired = _cookie_script(get_settings().cookie_name, "", 0)  # an expired cookie is deleted
        _run_cookie_script(expired, where=st)  # no sidebar on the sign-in page
        st.session_state[DELETE_COOKIE_KEY] = runs - 1
    # Cookie restore is restore_session's job (it checks the lock and active flags); this stops the
    # library from signing anyone in from the cookie on its own.
    st.session_state["logout"] = True
    users.prepare_password_decoy()  # the decoy hash exists before the first attempt
    authenticator.login(
        location="main",
        fields={"Form name": "Sign in", "Username": "Username", "Password": "Password", "Login": "Login"},
        key="login_form",
    )
    status = st.session_state.get("authentication_status")
    if status:
        _after_password_ok(st.session_state.get("username") or "")
    elif status is False:
        tried = authenticator.authentication_controller.authentication_model.credentials["usernames"]
        _after_password_wrong([n for n, c in tried.items() if c.get("failed_login_attempts", 0) > 0])


def _after_password_ok(username: str) -> None:
    try:
        with get_session() as session:
            user = users.complete_login(session=session, username=username)
    except users.LoginRefused as exc:
        _reset_library_state()
        st.error(str(exc))
        return
    st.session_state[SESSION_USER_KEY] = user.id
    st.session_state.pop(SIGNED_OUT_KEY, None)
    st.session_state[WRITE_COOKIE_KEY] = COOKIE_SCRIPT_RUNS
    st.session_state.pop(DELETE_COOKIE_KEY, None)
    st.rerun()


def _after_password_wrong(usernames: list[str]) -> None:
    message = users.BAD_CREDENTIALS
    if not usernames:  # no active account by that name: the library checked no password
        users.spend_a_password_check()
    with get_session() as session:
        for name in usernames:
            user = users.record_failed_login(session=session, username=name)
            if user is not None and user.locked:
                message = users.LOCKED_MESSAGE
    st.session_state["authentication_status"] = None
    st.error(message)


def logout() -> None:
    """Sign out: audit it, clear this session and delete the auth cookie (on the next run)."""
    user = current_user()
    if user is not None:
        with get_session() as session:
            users.record_logout(session=session, user=user)
    _reset_library_state()
    st.session_state["logout"] = True
    st.session_state.pop(SESSION_USER_KEY, None)
    st.session_state.pop(WRITE_COOKIE_KEY, None)
    st.session_state.pop(PENDING_COOKIE_KEY, None)
    st.session_state[SIGNED_OUT_KEY] = True
    st.session_state[DELETE_COOKIE_KEY] = COOKIE_SCRIPT_RUNS
