"""Heatmap: mean domain score by school, grade, teacher, block, coach or month; live and meeting modes."""

import streamlit as st

from coaching import anonymise, charts, heatmap, metrics
from coaching.errors import CoachloopError
from coaching.heatmap import DIMENSION_LABELS, HeatmapFilters
from coaching.settings import get_settings
from db import get_session
from ui.guard import guard

user = guard(__file__)
with get_session() as session:
    options = heatmap.filter_options(session=session, user=user)
    window = metrics.default_window(session=session)
    salt = anonymise.meeting_salt(session=session)

st.title("Domain heatmap")
top = st.columns([2, 1, 1])
rows = top[0].selectbox("Rows", list(DIMENSION_LABELS), format_func=DIMENSION_LABELS.get, key="hm_rows")
meeting = top[1].toggle(
    "Meeting mode", key="hm_meeting", help="Anonymous names, small cells hidden, large type."
)
live = top[2].toggle("Live refresh", value=True, key="hm_live", help="Redraw while this page is open.")
if meeting:
    st.markdown(
        "<style>.stApp, .stApp p, .stApp label {font-size: 1.4rem !important;}</style>",
        unsafe_allow_html=True,
    )
with st.expander("Filters", expanded=not meeting):
    f = st.columns(5)
    picked = f[0].date_input("Window", value=window, key="hm_window")
    schools = f[1].multiselect("School", list(options["schools"]), format_func=options["schools"].get)
    grades = f[2].multiselect("Grade band", options["grade_bands"])
    blocks = f[3].multiselect("Block", list(options["blocks"]), format_func=options["blocks"].get)
    versions = f[4].multiselect(
        "Rubric version", list(options["rubric_versions"]), format_func=options["rubric_versions"].get
    )
start, end = picked if isinstance(picked, tuple) and len(picked) == 2 else window
filters = HeatmapFilters(start, end, schools or None, grades or None, blocks or None, versions or None)


@st.fragment(run_every=get_settings().live_refresh_s if live else None)
def live_view() -> None:
    try:
        with get_session() as session:
            cells = heatmap.heatmap_cells(session=session, user=user, rows=rows, filters=filters)
            trend = heatmap.monthly_trend(session=session, user=user, filters=filters)
    except CoachloopError as exc:
        st.error(str(exc))
        return
    if cells.empty:
        st.info("No scores in this window and filter.")
        return
    shown = anonymise.meeting_cells(cells, rows=rows, salt=salt) if meeting else cells
    fig = charts.heatmap_figure(shown, meeting_mode=meeting)
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"hm_chart_{rows}_{meeting}")
    choices = heatmap.cell_choices(shown)  # in meeting mode, suppressed cells cannot be opened
    if meeting and choices.hidden:  # loud when the whole chart is blank, quiet beside other cells
        say = st.caption if choices.labels else st.info
        say(f"Cells with fewer than {anonymise.MIN_OBS} observations are hidden in meeting mode.")
    # One box per mode: a browser keeps showing a kept box's picked label (a real name) while its
    # value, a pair of ids, is still valid, so meeting mode starts with a new, empty box.
    box = f"hm_cell_{rows}_{meeting}"
    points = event.selection.points if event and event.selection else []
    clicked = (points[0].get("y"), points[0].get("x")) if points else None
    if clicked != st.session_state.get("hm_clicked"):  # a new click picks the cell; the box may change it
        st.session_state["hm_clicked"] = clicked
        if clicked in choices.at_point:
            st.session_state[box] = choices.at_point[clicked]
    if st.session_state.get(box) not in choices.labels:
        st.session_state[box] = None
    cell = st.selectbox(
        "Observations behind a cell", list(choices.labels), format_func=choices.labels.get, key=box
    )
    if cell:
        with get_session() as session:
            obs = heatmap.cell_observations(
                session=session, user=user, rows=rows, row_key=cell[0], domain_code=cell[1], filters=filters
            )
        if meeting:
            obs = anonymise.meeting_observations(obs, salt=salt)
        else:
            obs = obs.drop(columns=["teacher_id", "observer_id"])
        st.dataframe(obs, hide_index=True)
        st.caption(f"{len(obs)} observation(s) you may see.")
    st.subheader("Monthly trend by domain")
    trend_fig = charts.trend_figure(trend, meeting_mode=meeting)
    st.plotly_chart(trend_fig, key="hm_trend")
    ext, mime = charts.chart_format()
    d = st.columns(4)
    csv = anonymise.without_people_ids(shown, rows=rows) if meeting else shown
    d[0].download_button("Cells (CSV)", csv.to_csv(index=False), "heatmap.csv", "text/csv", on_click="ignore")
    d[1].download_button(
        f"Heatmap ({ext.upper()})",
        lambda: charts.figure_bytes(fig),
        f"heatmap.{ext}",
        mime,
        on_click="ignore",
    )
    d[2].download_button("Trend (CSV)", trend.to_csv(index=False), "trend.csv", "text/csv", on_click="ignore")
    d[3].download_button(
        f"Trend ({ext.upper()})",
        lambda: charts.figure_bytes(trend_fig),
        f"trend.{ext}",
        mime,
        on_click="ignore",
    )


live_view()
