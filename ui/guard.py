"""The guard every page calls first: returns the signed-in user or shows the login/refusal and stops."""

from __future__ import annotations

import streamlit as st

from db import get_session
from db.models import User
from ui.nav import spec_for

SESSION_USER_KEY = "user_id"
ACCOUNT_PAGE = "app_pages/account.py"


def current_user() -> User | None:
    """The signed-in, active, unlocked user of this browser session, fresh from the database."""
    uid = st.session_state.get(SESSION_USER_KEY)
    if uid is None:
        return None
    with get_session() as session:
        user = session.get(User, uid)
    if user is None or not user.active or user.locked:
        st.session_state.pop(SESSION_USER_KEY, None)
        return None
    return user


def guard(page_file: str) -> User:
    """Call as `user = guard(__file__)` at the top of every page."""
    user = current_user()
    if user is None:
        st.info("Please sign in to use Coachloop.")
        st.stop()
    try:
        spec = spec_for(page_file)
    except ValueError:  # a file outside the app
        spec = None
    if spec is None or user.role not in spec.roles:
        st.error("This page is not available to your role.")
        st.stop()
    if user.must_change_password and spec.file != ACCOUNT_PAGE:
        # An admin reset this password (and saw it): the user picks their own before anything else.
        st.warning("Please choose a new password before you continue.")
        st.page_link(ACCOUNT_PAGE, label="My account", icon=":material/person:")
        st.stop()
    return user
