"""Program outcomes: every DOMAIN.md figure for a window, overall and by school (one implementation:
coaching.metrics, shared with the CLI)."""

from datetime import date

import streamlit as st

from coaching import access, charts, heatmap, metrics
from coaching.errors import CoachloopError
from db import get_session
from ui.guard import guard

# (figure, label, format) for the cards and the by-school table alike; "a.b" is figures["a"]["b"].
# Formats are st.column_config's: shares show as percentages, scores to 2 decimals.
FIGURES = [
    ("observations", "Observations", "localized"),
    ("teachers_observed", "Teachers observed", "localized"),
    ("action_steps", "Action steps", "localized"),
    ("steps_per_teacher", "Steps per teacher", "%.1f"),
    ("start_score", "Start score", "%.2f"),
    ("end_score", "End score", "%.2f"),
    ("gain", "Gain", "%.2f"),
    ("relative_gain", "Relative gain", "percent"),
    ("sustained_coaching_share", "Sustained coaching", "percent"),
    ("stick_rate", "Stick rate", "percent"),
    ("effort_need_spearman", "Effort vs need (Spearman)", "%.2f"),
    ("feedback_latency_median_h", "Feedback latency (median)", "%.1f h"),
    ("feedback_within_48h_share", "Debriefed within 48 h", "percent"),
    ("coverage.due", "Teachers due", "localized"),
    ("coverage.overdue", "Teachers overdue", "localized"),
    ("coverage.share_not_overdue", "Coverage", "percent"),
]


HELP = {"coverage.share_not_overdue": "Share of active teachers not overdue for an observation."}


def card(figures: dict, key: str, fmt: str) -> str:
    value = figures
    for part in key.split("."):
        value = value[part]
    if value is None:
        return "–"
    if fmt == "localized":
        return f"{value:,}"
    if fmt == "percent":
        return f"{value:.1%}"
    return fmt % value


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
# Coverage is counted on one day: the window's end, or today while the window runs. Say which, so a
# past year's figure does not read as today's.
as_of = f"as of {date.fromisoformat(overall['coverage']['as_of']):%d %b %Y}"
labels = {k: f"{label} {as_of}" if k.startswith("coverage.") else label for k, label, _ in FIGURES}
for i in range(0, len(FIGURES), 4):
    for col, (key, _, fmt) in zip(st.columns(4), FIGURES[i : i + 4], strict=False):
        col.metric(labels[key], card(overall, key, fmt), help=HELP.get(key))

left, right = st.columns(2)
with left:
    st.subheader("Domains, strongest to weakest")
    ranked = charts.ranked_domains(overall["domain_means"])
    st.plotly_chart(charts.domain_bar(overall["domain_means"]), key="oc_domains")
    st.dataframe(
        ranked,
        hide_index=True,
        column_order=["rank", "domain", "mean"],
        column_config={
            "rank": st.column_config.NumberColumn("Rank", format="%d"),
            "domain": st.column_config.TextColumn("Domain"),
            "mean": st.column_config.NumberColumn("Mean score", format="%.2f"),
        },
    )
with right:
    st.subheader("Effort follows need")
    st.caption("Each dot is a teacher: first observation score against observations received.")
    st.plotly_chart(charts.effort_scatter(effort), key="oc_effort")

st.subheader("By school")
table = charts.figures_table(by_school)
# Shown: the school's name, the figures as on the cards, then its domain means; not the ids, the
# window (the caption says it) or the means by code (the same numbers again).
config = {"school": st.column_config.TextColumn("School")}
config |= {k: st.column_config.NumberColumn(labels[k], format=fmt, help=HELP.get(k)) for k, _, fmt in FIGURES}
config |= {
    c: st.column_config.NumberColumn(c.removeprefix("domain_means."), format="%.2f")
    for c in table.columns
    if c.startswith("domain_means.")
}
st.dataframe(
    table,
    hide_index=True,
    key="oc_by_school",
    column_order=[c for c in config if c in table.columns],
    column_config={c: v for c, v in config.items() if c in table.columns},
)
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
