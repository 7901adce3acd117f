"""One observation: scores, evidence, notes and revisits; log the debrief, edit it within the
window, drop or master the teacher's steps, and set or close the teacher's coaching goal."""

from datetime import datetime

import streamlit as st

from coaching import observations as obs
from coaching import steps
from coaching.errors import CoachloopError
from coaching.timeutil import school_tz
from db import get_session
from ui.guard import guard

user = guard(__file__)
ss = st.session_state
RATINGS = {"Not yet": "not_yet", "Partial": "partial", "Implemented": "implemented"}
st.title("Observation")
# One slot whether or not there is news: a success shown only on the next run would shift every
# element below it by one, and the browser would then remount (and collapse) an open expander.
news = st.empty()
if flash := ss.pop("observation_flash", None):
    news.success(flash)

with get_session() as s:
    items = obs.list_observations(session=s, user=user, limit=500)
labels = {o["id"]: o["label"] for o in items}
if not labels:
    st.info("No observations to show yet.")
    st.stop()
wanted = st.query_params.get("id")
if wanted and wanted.isdigit() and int(wanted) in labels and ss.get("observation_qp") != wanted:
    ss["observation_qp"] = wanted
    ss["observation_pick"] = int(wanted)
oid = st.selectbox("Observation", list(labels), format_func=labels.get, key="observation_pick")


def section(label: str, **kw):
    """An expander and, below it, the slot for its actions' errors: outside, so that a collapsed
    expander cannot hide an error, and always there, so that an error shifts nothing below."""
    return st.expander(label, **kw), st.empty()


def act(fn, message, slot, **kw):
    """Run one coaching write; show its error in `slot`, or rerun with a success message."""
    try:
        with get_session() as s:
            fn(session=s, by=user, **kw)
    except CoachloopError as exc:
        slot.error(str(exc))
    else:
        ss["observation_flash"] = message
        st.rerun()


with get_session() as s:
    v = obs.observation_view(session=s, observation_id=oid, user=user)
    open_steps = steps.open_and_mastered_steps(session=s, user=user, teacher_id=v["teacher_id"])
    goal = steps.active_goal(session=s, user=user, teacher_id=v["teacher_id"])
    base = obs.draft_from_observation(session=s, observation_id=oid, user=user) if v["can_edit"] else None

st.subheader(v["teacher"])
st.caption(f"{v['observed_at_local']} · {v['block']} · {v['duration_min']} min · by {v['observer']}")
st.dataframe(
    [
        {
            "Domain": x["domain"],
            "Score": "not observed" if x["score"] is None else str(x["score"]),
            "Evidence": x["evidence"],
        }
        for x in v["scores"]
    ],
    hide_index=True,
)
st.markdown(
    f"**Notes:** {v['notes']}" if not v["notes_hidden"] else "*Notes are private to coach and teacher.*"
)
for r in v["revisits"]:
    st.markdown(f"- Revisit: **{r['title']}** — {r['rating_label']} (now {r['state_now']})")
for n in v["new_steps"]:
    st.markdown(f"- New step: **{n['title']}** (check back by {n['check_back_on']})")
if v["debriefed_at"]:
    st.markdown(f"**Debrief** {v['debriefed_at_local']}: {v['debrief_notes'] or ''}")
elif v["debrief_flagged"]:
    st.warning("No debrief logged after 48 hours.")
if v["acknowledged_at"]:
    st.markdown(f"**Acknowledged by the teacher.** {v['reflection'] or ''}")

if user.role not in ("coach", "admin"):
    st.stop()

box, slot = section("Log debrief", expanded=not v["debriefed_at"])
with box, st.form("debrief"):
    now = datetime.now(school_tz()).replace(second=0, microsecond=0, tzinfo=None)
    left, right = st.columns(2)
    day = left.date_input("Debrief date", value=now.date())
    at = right.time_input("Debrief time", value=now.time(), step=300)
    notes = st.text_area("Debrief notes", value=v["debrief_notes"] or "", height=68)
    if st.form_submit_button("Log debrief"):
        act(
            obs.log_debrief,
            "Debrief logged.",
            slot,
            observation_id=oid,
            debriefed_at=datetime.combine(day, at),
            notes=notes,
        )

if base is not None:
    box, slot = section("Edit observation")
    with box, st.form("edit"):
        for x in v["scores"]:
            cur = base.scores.get(x["code"])
            base.scores[x["code"]] = st.segmented_control(
                f"Edit: {x['domain']}", ["1", "2", "3", "4"], default=None if cur is None else str(cur)
            )
            base.evidence[x["code"]] = st.text_input(f"Edit evidence: {x['domain']}", value=x["evidence"])
        for r in v["revisits"]:
            label = next(k for k, val in RATINGS.items() if val == r["rating"])
            base.revisits[r["step_id"]] = st.segmented_control(
                f"Edit revisit: {r['title']}", list(RATINGS), default=label
            )
        base.notes = st.text_area("Edit notes", value=base.notes)
        if st.form_submit_button("Save changes"):
            base.scores = {c: int(x) if x else None for c, x in base.scores.items()}
            base.revisits = {k: RATINGS[x] for k, x in base.revisits.items() if x}
            act(obs.update_observation, "Observation updated.", slot, observation_id=oid, draft=base)

box, slot = section(f"Action steps of {v['teacher']}")
with box:
    for step in open_steps:
        st.markdown(
            f"**{step['title']}** · {step['state']} · {step['days_open']} days · check back {step['check_back_on']}"
        )
        left, right = st.columns(2)
        reason = left.text_input(f"Reason to drop: {step['title']}", key=f"reason_{step['id']}")
        if right.button("Drop step", key=f"drop_{step['id']}"):
            act(steps.drop_step, "Step dropped.", slot, step_id=step["id"], reason=reason)
        if step["state"] == "open" and right.button("Mark mastered", key=f"master_{step['id']}"):
            act(steps.mark_mastered, "Step marked mastered.", slot, step_id=step["id"])
    if not open_steps:
        st.caption("No open or mastered steps.")

box, slot = section("Coaching goal")
with box:
    if goal is not None:
        st.markdown(f"**Current goal** (since {goal.set_on}): {goal.text}")
        if st.button("Close goal", key="close_goal"):
            act(steps.close_goal, "Goal closed.", slot, goal_id=goal.id)
    with st.form("goal"):
        text = st.text_input("New goal")
        if st.form_submit_button("Set goal"):
            act(steps.set_goal, "Goal set.", slot, teacher_id=v["teacher_id"], text=text)
