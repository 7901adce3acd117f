"""Quick observation: teacher, block, time, one click per domain score, revisits and new steps.

No st.form on purpose: every change reruns the page, which (a) autosaves the draft so a reload or
a dropped connection loses nothing, (b) lists the chosen teacher's steps at once and (c) reorders
the library by the scores just given. Widget keys carry a generation number that changes after a
successful save, which empties the form and makes a second click of the old Save button a no-op;
the client token (one per generation) makes a save that is retried after an interruption idempotent.
"""

import uuid
from datetime import date, datetime, time

import streamlit as st

from coaching import observations as obs
from coaching import steps
from coaching.errors import CoachloopError, StepCapReached
from coaching.timeutil import school_tz
from db import get_session
from ui.guard import guard

user = guard(__file__)
ss = st.session_state
gen = ss.setdefault("observe_gen", 0)
P = f"obs{gen}_"  # widget key prefix of this form generation
RATINGS = {"Not yet": "not_yet", "Partial": "partial", "Implemented": "implemented"}

st.title("Observe")
if saved := ss.pop("observe_saved", None):
    st.success(f"Saved the observation of {saved[1]}.", icon=":material/check_circle:")
    st.page_link("app_pages/observation.py", label="Open it (debrief, edit)", query_params={"id": saved[0]})


def restore(draft: dict) -> None:
    """Put a saved draft's values into this form generation's widgets."""
    for name, value in draft.items():
        if name in ("date", "time") and value:
            value = (date if name == "date" else time).fromisoformat(value)
        if not name.startswith("_"):
            ss[P + name] = value
    ss["observe_restored"] = draft.get("_saved_at", "")
    ss.pop("observe_offer", None)


with get_session() as s:
    if not ss.get("observe_draft_checked"):  # first visit in this browser session
        ss["observe_draft_checked"] = True
        ss["observe_offer"] = obs.load_draft(session=s, by=user)
    pre = st.query_params.get("teacher") or ss.pop("observe_teacher_id", None)
    offer = ss.get("observe_offer")
    if offer and (not pre or str(pre) == str(offer.get("teacher"))):
        restore(offer)  # auto-restore unless the coach came to observe someone else
    if pre and str(pre) != ss.get("observe_pre_applied"):
        ss["observe_pre_applied"] = str(pre)
        ss[P + "teacher"] = int(pre) if str(pre).isdigit() else None
    scores_now = {k[len(P + "score_") :]: int(v) for k, v in ss.items() if k.startswith(P + "score_") and v}
    ctx = obs.observe_context(session=s, user=user, teacher_id=ss.get(P + "teacher"), scores=scores_now)

teachers = {t["id"]: t["label"] for t in ctx["teachers"]}
library = {e["code"]: e for e in ctx["library"]}
names = {d["code"]: d["name"] for d in ctx["domains"]}
if ss.get(P + "teacher") not in teachers:
    ss.pop(P + "teacher", None)
if any(c not in library for c in ss.get(P + "lib") or []):  # a restored draft may name a retired step
    ss[P + "lib"] = [c for c in ss[P + "lib"] if c in library]
if restored := ss.pop("observe_restored", None):  # said once, on the run that restored it
    st.info(f"Restored your unsaved draft from {restored}.", icon=":material/restore:")
if offer := ss.get("observe_offer"):  # a draft of another teacher: kept until the coach decides
    st.info(f"You have an unsaved draft for {teachers.get(offer.get('teacher'), 'another teacher')}.")
    left, right = st.columns(2)
    left.button("Restore draft", key="observe_restore", on_click=restore, args=(offer,))
    right.button("Discard draft", key="observe_discard", on_click=ss.pop, args=("observe_offer", None))

teacher_id = st.selectbox(
    "Teacher",
    list(teachers),
    format_func=teachers.get,
    index=None,
    placeholder="Type a name…",
    key=P + "teacher",
)
if teacher_id is None:
    st.caption("Pick a teacher to start. Your caseload is listed first.")
    st.stop()

now = datetime.now(school_tz()).replace(second=0, microsecond=0, tzinfo=None)
blocks = {b["code"]: b["name"] for b in ctx["blocks"]}
# The form as it opened, kept for the generation: a draft is saved only once the form differs from it.
first = {"date": now.date(), "time": now.time(), "block": next(iter(blocks), None), "duration": 15}
first = ss.setdefault(f"observe_blank{gen}", first)
for name, value in first.items():
    ss.setdefault(P + name, value)
left, right = st.columns(2)
left.selectbox("Block", list(blocks), format_func=blocks.get, key=P + "block")
right.number_input("Duration (min)", min_value=1, max_value=240, step=5, key=P + "duration")
left.date_input("Date", key=P + "date", format="YYYY-MM-DD")
right.time_input("Time", key=P + "time", step=300)

st.subheader(
    "Scores", help="1 Beginning · 2 Developing · 3 Proficient · 4 Exemplary. Leave blank = not observed."
)
for code, name in names.items():
    st.segmented_control(name, ["1", "2", "3", "4"], key=P + f"score_{code}")
    st.text_input(
        f"Evidence: {name}",
        key=P + f"ev_{code}",
        placeholder=f"Evidence for {name} (optional)",
        label_visibility="collapsed",
    )
st.text_area("Notes", key=P + "notes", height=80)
st.checkbox("Private notes (hidden from leaders)", key=P + "private")

if ctx["steps"]:
    st.subheader("Revisit action steps")
    for step in ctx["steps"]:
        label = f"{step['title']} ({step['state']}, {step['days_open']} days)"
        st.segmented_control(label, list(RATINGS), key=P + f"rv_{step['id']}")

st.subheader("New action steps")
st.multiselect(
    "Library steps",
    list(library),
    key=P + "lib",
    placeholder="Lowest-scoring domains first",
    format_func=lambda c: (
        f"{names.get(library[c]['domain_code'], library[c]['domain_code'])}: {library[c]['title']}"
    ),
)
st.text_area("Custom step", key=P + "custom", height=68, placeholder="A specific, observable teacher move")
st.caption(f"New steps are checked back on in {ctx['check_back_days']} days.")

save = st.button("Save observation", type="primary", key=P + "save", icon=":material/save:")
ss.setdefault(P + "token", uuid.uuid4().hex)
values = {k[len(P) :]: v for k, v in ss.items() if k.startswith(P) and k not in (P + "save", P + "token")}
draft = obs.ObservationDraft(
    teacher_id=teacher_id,
    block_code=values.get("block") or "",
    observed_at=datetime.combine(values["date"], values["time"]) if values.get("date") else None,
    duration_min=int(values.get("duration") or 0),
    scores={c: int(values[f"score_{c}"]) if values.get(f"score_{c}") else None for c in names},
    evidence={c: values.get(f"ev_{c}") or "" for c in names},
    notes=values.get("notes") or "",
    notes_private=bool(values.get("private")),
    revisits={s["id"]: RATINGS[values[f"rv_{s['id']}"]] for s in ctx["steps"] if values.get(f"rv_{s['id']}")},
    new_steps=[obs.NewStep(library_code=c) for c in values.get("lib") or []]
    + ([obs.NewStep(custom_text=values["custom"])] if (values.get("custom") or "").strip() else []),
    client_token=ss[P + "token"],
)
blank = obs.ObservationDraft(
    teacher_id=teacher_id,
    block_code=first["block"] or "",
    observed_at=datetime.combine(first["date"], first["time"]),
    duration_min=first["duration"],
)

with get_session() as s:
    if save:
        try:
            saved_obs = obs.record_observation(session=s, draft=draft, by=user)
        except StepCapReached as exc:
            ss["observe_cap"] = exc.open_step_ids
            st.error(str(exc), icon=":material/block:")
        except CoachloopError as exc:
            st.error(f"Not saved: {exc}", icon=":material/error:")
        else:
            obs.clear_draft(session=s, by=user)
            ss.pop("observe_cap", None)
            ss["observe_saved"] = (saved_obs.id, teachers[teacher_id].split(" (")[0])
            ss["observe_gen"] = gen + 1
            st.rerun()
    draft_payload = {k: (v.isoformat() if isinstance(v, (date, time)) else v) for k, v in values.items()}
    if draft_payload != ss.get("observe_last_draft") and not ss.get("observe_offer"):
        if obs.has_input(draft, blank=blank):
            obs.save_draft(session=s, by=user, payload=draft_payload)
        else:  # nothing entered (or all of it undone): no draft worth offering back later
            obs.clear_draft(session=s, by=user)
        ss["observe_last_draft"] = draft_payload

    # Empty when mastering or dropping cannot make room (the message then asks for fewer new steps).
    cap_ids = ss.get("observe_cap") or []
    if droppable := [x for x in ctx["steps"] if x["id"] in cap_ids and x["state"] == "open"]:
        st.warning("Make room: mark an open step mastered, or drop it with a reason. Then save again.")
        for step in droppable:
            left, right = st.columns(2)
            left.markdown(f"**{step['title']}** · open {step['days_open']} days")
            reason = right.text_input(f"Reason to drop: {step['title']}", key=f"drop_reason_{step['id']}")
            try:
                if left.button("Mark mastered", key=f"master_{step['id']}"):
                    steps.mark_mastered(session=s, step_id=step["id"], by=user)
                    ss.pop("observe_cap", None)
                    st.rerun()
                if right.button("Drop", key=f"drop_{step['id']}"):
                    steps.drop_step(session=s, step_id=step["id"], reason=reason, by=user)
                    ss.pop("observe_cap", None)
                    st.rerun()
            except CoachloopError as exc:
                st.error(str(exc))
