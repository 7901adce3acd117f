"""Caseload: every teacher you coach, most urgent first, one click to observe, and debriefs to log."""

from datetime import datetime

import streamlit as st

from coaching import caseload as cl
from coaching import observations as obs
from coaching.errors import CoachloopError
from coaching.timeutil import school_tz
from db import get_session
from ui.guard import guard

user = guard(__file__)
st.title("Caseload")
if flash := st.session_state.pop("caseload_flash", None):
    st.success(flash)
with get_session() as s:
    table = cl.caseload(session=s, user=user)
    pending = cl.pending_debriefs(session=s, user=user)
    demo_note = cl.demo_dates_note(session=s)
head = cl.summary(table)

if table.empty:
    st.info("No teachers in this caseload yet.")
else:
    left, right = st.columns(2)
    left.metric("Overdue", head["overdue"], help="Not observed for 28+ days (or never)")
    right.metric("Coverage", f"{head['coverage']:.0%}", help="Share of the caseload not overdue")
    if demo_note:
        st.info(demo_note, icon=":material/info:")
    if user.role in ("coach", "admin"):
        names = dict(zip(table["teacher_id"], table["teacher"] + " · " + table["status"], strict=True))
        pick = st.selectbox("Teacher to observe", list(names), format_func=names.get, key="caseload_pick")
        if st.button("Observe", type="primary", icon=":material/edit_note:", key="caseload_observe"):
            st.session_state["observe_teacher_id"] = int(pick)
            st.switch_page("app_pages/observe.py")
    st.dataframe(
        table.drop(columns=["teacher_id"]),
        hide_index=True,
        column_config={
            "teacher": "Teacher",
            "school": "School",
            "last_observed": st.column_config.DateColumn("Last observed"),
            "days_since": "Days since",
            "status": "Status",
            "open_steps": "Open steps",
            "steps_past_check_back": "Past check-back",
            "oldest_open_step_days": "Oldest open (days)",
            "debriefs_pending": "Debriefs pending",
            "flagged_debriefs": "No debrief > 48 h",
        },
    )

st.subheader("Debriefs pending")
if not pending:
    st.caption("Every observation has its debrief logged.")
elif user.role not in ("coach", "admin"):
    st.dataframe([{"Observation": p["label"]} for p in pending], hide_index=True)
else:
    labels = {p["id"]: p["label"] for p in pending}
    with st.form("debrief_form"):
        oid = st.selectbox("Observation", list(labels), format_func=labels.get)
        now = datetime.now(school_tz()).replace(second=0, microsecond=0, tzinfo=None)
        left, right = st.columns(2)
        day = left.date_input("Debrief date", value=now.date())
        at = right.time_input("Debrief time", value=now.time(), step=300)
        notes = st.text_area("Debrief notes", height=68)
        if st.form_submit_button("Log debrief"):
            try:
                with get_session() as s:
                    obs.log_debrief(
                        session=s,
                        observation_id=oid,
                        debriefed_at=datetime.combine(day, at),
                        notes=notes,
                        by=user,
                    )
                st.session_state["caseload_flash"] = "Debrief logged."
                st.rerun()
            except CoachloopError as exc:
                st.error(str(exc))
