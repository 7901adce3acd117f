"""My account: who I am, and changing my own password."""

import streamlit as st

from coaching import users
from coaching.errors import CoachloopError
from db import get_session
from ui.auth import WRITE_COOKIE_KEY
from ui.guard import guard

user = guard(__file__)
st.title("My account")
if st.session_state.pop("_password_changed", False):
    st.success("Your password is changed.")
st.write(f"**{user.display_name}** · username `{user.username}` · role {user.role}")
if user.must_change_password:
    st.warning("An admin set a temporary password for you: choose your own now.")

with st.form("change_password", clear_on_submit=True):
    st.subheader("Change password")
    current = st.text_input("Current password", type="password")
    new = st.text_input("New password", type="password")
    repeat = st.text_input("Repeat new password", type="password")
    submitted = st.form_submit_button("Change password")

if submitted:
    if new != repeat:
        st.error("The two new passwords differ.")
    else:
        try:
            with get_session() as session:
                users.change_own_password(session=session, user=user, current=current, new=new)
        except CoachloopError as exc:
            st.error(str(exc))
        else:
            st.session_state["_password_changed"] = True
            st.session_state[WRITE_COOKIE_KEY] = True  # older cookies are void now: issue a new one
            st.rerun()
st.caption(f"Passwords need at least {users.MIN_PASSWORD_LENGTH} characters.")
