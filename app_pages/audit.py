"""Audit log: who changed what and when, newest first, with filters. Admin only."""

from datetime import date, timedelta

import streamlit as st

from coaching import admin
from db import get_session
from ui.guard import guard

user = guard(__file__)
st.title("Audit log")

with get_session() as session:
    options = admin.audit_filter_options(session=session, by=user)
    c1, c2, c3, c4 = st.columns(4)
    who = c1.selectbox("User", options["users"], index=None, placeholder="Anyone")
    entity = c2.selectbox("Entity", options["entities"], index=None, placeholder="Any entity")
    action = c3.selectbox("Action", options["actions"], index=None, placeholder="Any action")
    today = date.today()
    span = c4.date_input("Dates (UTC)", value=(today - timedelta(days=30), today))
    start, end = (span[0], span[-1]) if isinstance(span, (tuple, list)) and span else (None, None)
    log = admin.audit_entries(
        session=session, by=user, username=who, entity=entity, action=action, start=start, end=end
    )

st.caption(f"{len(log)} entries (at most 1,000 shown).")
st.dataframe(log, hide_index=True, width="stretch")
