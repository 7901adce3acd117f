"""Coachloop: routes only. Page config, start-up, login gate, st.navigation by role."""

import logging

import streamlit as st

from coaching.errors import CoachloopError, DatabaseUnavailable
from ui.auth import finish_login, logout, restore_session
from ui.guard import current_user
from ui.nav import LOGIN_PAGE, pages_for
from ui.startup import boot

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="Coachloop", page_icon=":material/school:", layout="wide")


@st.cache_resource(show_spinner="Preparing the database...")
def _boot() -> bool:
    boot()
    return True


try:
    _boot()
except DatabaseUnavailable as exc:
    # st.cache_resource does not cache an exception: the next rerun tries again, so the app
    # recovers by itself once the database is back.
    st.error(f"Coachloop cannot open its database. {exc}", icon=":material/database:")
    st.caption("Fix the database (or DATABASE_URL) and reload this page.")
    st.stop()
except CoachloopError as exc:
    st.error(f"Coachloop cannot start. {exc}")
    st.caption("Fix the setting and restart the app.")
    st.stop()

restore_session()
user = current_user()
if user is None:
    st.navigation([st.Page(LOGIN_PAGE, title="Sign in", icon=":material/login:")]).run()
else:
    finish_login()  # writes the auth cookie on the run after a sign-in
    sections: dict[str, list] = {}
    for spec in pages_for(user.role):
        sections.setdefault(spec.section, []).append(st.Page(spec.file, title=spec.title, icon=spec.icon))
    with st.sidebar:
        st.caption(f"Signed in as **{user.display_name}** ({user.role})")
        if st.button("Sign out", key="signout", icon=":material/logout:"):
            logout()
            st.rerun()
    st.navigation(sections).run()
