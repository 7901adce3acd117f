"""My coaching (teacher): my observations with scores, evidence and debrief notes, my action
steps with their history, acknowledgement with a reflection, and a printable summary."""

import streamlit as st

from coaching import access, steps
from coaching import observations as obs
from coaching.errors import CoachloopError
from db import get_session
from ui.guard import guard

user = guard(__file__)
ss = st.session_state


def history_rows(history: list[dict]) -> list[dict]:
    """A step's history for its teacher (the assignment is already in the caption)."""
    return [
        {
            "When": obs.local_text(h["at"])[:10],
            "What": f"revisit: {h['what']}" if h["kind"] == "revisit" else h["what"],
            "Detail": h["cause"],
        }
        for h in history
        if not (h["kind"] == "state" and h["what"] == "new -> open")
    ]


st.title("My coaching")
if flash := ss.pop("my_coaching_flash", None):
    st.success(flash)

with get_session() as s:
    me = access.own_teacher(s, user)
    if me is None:
        st.info("Your login is not linked to a teacher record yet; ask an admin.")
        st.stop()
    items = obs.list_observations(session=s, user=user)
    my_steps = steps.steps_for_teacher(session=s, user=user, teacher_id=me.id)
    goal = steps.active_goal(session=s, user=user, teacher_id=me.id)

if goal is not None:
    st.info(f"**My coaching goal** (since {goal.set_on}): {goal.text}", icon=":material/flag:")

st.subheader("My observations")
if not items:
    st.caption("No observations yet.")
else:
    labels = {o["id"]: f"{o['observed_at_local']} · by {o['observer']}" for o in items}
    oid = st.selectbox("Observation", list(labels), format_func=labels.get, key="my_obs")
    with get_session() as s:
        v = obs.observation_view(session=s, observation_id=oid, user=user)
        page = obs.observation_summary_html(session=s, observation_id=oid, user=user)
    st.caption(f"{v['block']} · {v['duration_min']} min · observed by {v['observer']}")
    st.dataframe(
        [
            {
                "Domain": x["domain"],
                "Score": "not observed" if x["score"] is None else str(x["score"]),
                "Evidence": x["evidence"],
            }
            for x in v["scores"]
            if x["score"] or x["evidence"]
        ],
        hide_index=True,
    )
    if v["notes"]:
        st.markdown(f"**Notes:** {v['notes']}")
    if v["debriefed_at"]:
        st.markdown(f"**Debrief** ({v['debriefed_at_local']}): {v['debrief_notes'] or ''}")
    for n in v["new_steps"]:
        st.markdown(f"- New step: **{n['title']}** (check back by {n['check_back_on']})")
    st.download_button(
        "Download one-page summary",
        page,
        file_name=f"observation-{oid}.html",
        mime="text/html",
        key="summary",
    )
    if v["acknowledged_at"]:
        st.caption(f"You acknowledged this observation. {v['reflection'] or ''}")
    else:
        with st.form("ack"):
            reflection = st.text_area("Reflection (optional)", height=68)
            if st.form_submit_button("Acknowledge"):
                try:
                    with get_session() as s:
                        obs.acknowledge(session=s, observation_id=oid, reflection=reflection, by=user)
                    ss["my_coaching_flash"] = "Thank you, acknowledged."
                    st.rerun()
                except CoachloopError as exc:
                    st.error(str(exc))

st.subheader("My action steps")
for step in my_steps:
    with st.expander(f"{step['title']} · {step['state']}"):
        if step["custom_text"] and step["custom_text"] != step["title"]:
            st.write(step["custom_text"])
        st.caption(
            f"Assigned {obs.local_text(step['assigned_at'])[:10]} · check back by {step['check_back_on']}"
        )
        if not any(h["kind"] == "revisit" for h in step["history"]):
            st.caption("No revisits yet.")
        if rows := history_rows(step["history"]):
            st.dataframe(rows, hide_index=True)
if not my_steps:
    st.caption("No action steps yet.")
