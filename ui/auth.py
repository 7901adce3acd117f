"""Sign-in, sign-out and session restore. (Basic version; the accounts issue hardens it.)"""

from __future__ import annotations

import streamlit as st
from sqlmodel import select

from coaching.users import check_password
from db import get_session
from db.models import User
from ui.guard import SESSION_USER_KEY


def restore_session() -> None:
    """Restore a signed-in session from the auth cookie, if any."""


def render_login() -> None:
    """The sign-in form."""
    st.title("Coachloop")
    with st.form("login"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Login")
    if submitted:
        with get_session() as session:
            user = session.exec(select(User).where(User.username == username.strip())).first()
        if user and user.active and not user.locked and check_password(password, user.password_hash):
            st.session_state[SESSION_USER_KEY] = user.id
            st.rerun()
        st.error("Username or password is incorrect.")


def logout() -> None:
    """Sign out of this browser session."""
    st.session_state.pop(SESSION_USER_KEY, None)
