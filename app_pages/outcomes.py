"""Program outcomes: every DOMAIN.md figure for a window, overall and by school (one implementation:
coaching.metrics, shared with the CLI)."""

import streamlit as st

from coaching import access, charts, heatmap, metrics
from coaching.errors import CoachloopError
from db import get_session
from ui.guard import guard


def pct(x):
    return "–" if x is None else f"{x:.1%}"


def num(x, digits=2, unit=""):
    return "–" if x is None else f"{x:.{digits}f}{unit}"


user = guard(__file__)
st.title("Program outcomes")
with get_session() as session:
    scope = access.school_ids(session, user)  # None = every school (admin)
    schools = heatmap.filter_options(session=session, user=user)["schools"]
    window = metrics.default_window(session=session)
    c = st.columns([1, 2])
    picked = c[0].date_input("Window", value=window, key="oc_window")
    chosen = c[1].multiselect("Schools", list(schools), format_func=schools.get, key="oc_schools")
    start, end = picked if isinstance(picked, tuple) and len(picked) == 2 else window
    school_ids = chosen or scope
    try:
        overall = metrics.program_metrics(session=session, start=start, end=end, school_ids=school_ids)
        by_school = metrics.metrics_by_school(session=session, start=start, end=end, school_ids=school_ids)
        effort = metrics.teacher_start_vs_effort(session=session, start=start, end=end, school_ids=school_ids)
    except CoachloopError as exc:
        st.error(str(exc))
        st.stop()

st.caption(f"{start:%d %b %Y} to {end:%d %b %Y}, school-local dates inclusive. Definitions: DOMAIN.md.")
cov = overall["coverage"]
cards = [
    ("Observations", f"{overall['observations']:,}"),
    ("Teachers observed", f"{overall['teachers_observed']:,}"),
    ("Action steps", f"{overall['action_steps']:,}"),
    ("Steps per teacher", num(overall["steps_per_teacher"], 1)),
    ("Start score", num(overall["start_score"])),
    ("End score", num(overall["end_score"])),
    ("Gain", num(overall["gain"])),
    ("Relative gain", pct(overall["relative_gain"])),
    ("Sustained coaching", pct(overall["sustained_coaching_share"])),
    ("Stick rate", pct(overall["stick_rate"])),
    ("Effort vs need (Spearman)", num(overall["effort_need_spearman"])),
    ("Feedback latency (median)", num(overall["feedback_latency_median_h"], 1, " h")),
    ("Debriefed within 48 h", pct(overall["feedback_within_48h_share"])),
    ("Teachers due", f"{cov['due']:,}"),
    ("Teachers overdue", f"{cov['overdue']:,}"),
    ("Coverage (not overdue)", pct(cov["share_not_overdue"])),
]
for i in range(0, len(cards), 4):
    for col, (label, value) in zip(st.columns(4), cards[i : i + 4], strict=False):
        col.metric(label, value)

left, right = st.columns(2)
with left:
    st.subheader("Domains, strongest to weakest")
    ranked = charts.ranked_domains(overall["domain_means"])
    st.plotly_chart(charts.domain_bar(overall["domain_means"]), key="oc_domains")
    st.dataframe(ranked, hide_index=True)
with right:
    st.subheader("Effort follows need")
    st.caption("Each dot is a teacher: first observation score against observations received.")
    st.plotly_chart(charts.effort_scatter(effort), key="oc_effort")

st.subheader("By school")
table = charts.figures_table(by_school)
st.dataframe(table, hide_index=True, key="oc_by_school")
overall_table = charts.figures_table([{"school": "All selected", **overall}])
d = st.columns(4)
d[0].download_button(
    "Figures (CSV)", overall_table.to_csv(index=False), "outcomes.csv", "text/csv", on_click="ignore"
)
d[1].download_button(
    "By school (CSV)", table.to_csv(index=False), "outcomes_by_school.csv", "text/csv", on_click="ignore"
)
d[2].download_button(
    "Domains (CSV)", ranked.to_csv(index=False), "domains.csv", "text/csv", on_click="ignore"
)
d[3].download_button(
    "Effort vs need (CSV)", effort.to_csv(index=False), "effort.csv", "text/csv", on_click="ignore"
)
