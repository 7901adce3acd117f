"""Prep brief: where the teacher left off, in seconds, before the debrief (a draft, never an evaluation)."""

import streamlit as st

from coaching import access
from coaching import brief as br
from coaching.errors import CoachloopError
from coaching.settings import get_settings
from coaching.steps import aware
from coaching.timeutil import school_tz
from db import get_session
from ui.guard import guard
from ui.llm_client import get_client

user = guard(__file__)
st.title("Prep brief")
client = get_client()
if client is None:
    st.caption("No LLM is configured (OPENAI_API_KEY): briefs are written offline from the records.")
else:
    st.caption(
        f"Narrative by `{get_settings().llm_model}`; names are pseudonymised and notes scrubbed before sending."
    )

with get_session() as s:
    teachers = {t.id: t.name for t in access.visible_teachers(s, user)}
    if not teachers:
        st.info("No teachers in your caseload yet.")
        st.stop()
    wanted = st.query_params.get("teacher", "")
    ids = list(teachers)
    start = ids.index(int(wanted)) if wanted.isdigit() and int(wanted) in teachers else 0
    teacher_id = st.selectbox("Teacher", ids, index=start, format_func=teachers.get)
    left, right = st.columns(2)
    prepare = left.button("Prepare brief", type="primary", icon=":material/summarize:")
    regenerate = right.button("Regenerate", help="Write a new brief even if the records have not changed")
    try:
        if prepare or regenerate:
            job = br.start_brief(session=s, user=user, teacher_id=teacher_id, client=client, force=regenerate)
            if job.needs_llm:
                with st.status("Writing the brief…", expanded=True) as status:
                    st.write_stream(job.chunks())
                    result = job.finish()
                    done = (
                        "Brief ready"
                        if result.source == "llm"
                        else "The LLM failed: showing the offline brief"
                    )
                    status.update(
                        label=done, state="complete" if result.source == "llm" else "error", expanded=False
                    )
            else:
                with st.spinner("Preparing the brief…"):
                    result = job.finish()
            if result.reused:
                st.info(
                    "The records have not changed since this brief was saved; Regenerate writes a new one."
                )
        saved = br.list_briefs(session=s, user=user, teacher_id=teacher_id)
    except CoachloopError as exc:
        st.error(str(exc))
        st.stop()

if not saved:
    st.info("No brief yet for this teacher: press **Prepare brief**.")
    st.stop()
by_id = {b.id: b for b in saved}  # newest first
labels = {
    b.id: f"{len(saved) - i}. {aware(b.created_at).astimezone(school_tz()):%Y-%m-%d %H:%M:%S} · {b.source}"
    + (f" · {b.model}" if b.model else "")
    for i, b in enumerate(saved)
}
shown = by_id[st.selectbox("Saved briefs", list(labels), format_func=labels.get)]
if shown.source == "offline":
    st.warning(f"Offline brief: {shown.offline_reason}.")
findings = br.findings_of(shown)
if findings:
    st.warning(
        "These figures are not in the records; check them before the debrief:\n\n"
        + "\n".join(f"- **{f.value}**: “{f.sentence}”" for f in findings)
    )
st.markdown(shown.text)
with st.expander("What was sent"):
    if shown.prompt_text:
        st.code(shown.prompt_text, language="json", wrap_lines=True)
    else:
        st.write("Nothing: this brief was written offline and no prompt left the app.")
st.download_button(
    "Download Markdown",
    br.brief_markdown(shown),
    file_name=f"prep-brief-{shown.teacher_id}-{shown.created_at:%Y%m%d-%H%M}.md",
    mime="text/markdown",
)
