"""The coaching loop in a real browser, in order: a leader's heatmap before, a coach logs an
observation (counting every interaction), the coach opens the prep brief, and the leader's heatmap
shows the new observation; meeting mode hides names.

The tests in this file share one demo database and run in file order.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, func
from sqlmodel import Session, select

from db.models import ActionStep, DomainScore, Observation, Revisit, Teacher
from tests.e2e.conftest import ARTIFACTS, LONG, SHORT, Interactions, sign_in

pytestmark = pytest.mark.e2e
STATE: dict = {}


def open_page(page, title: str) -> None:
    """Open a page from the sidebar navigation, as a person would."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()


def choose(page, label: str, option: str, counter=None) -> None:
    """Pick an option of a Streamlit selectbox (two clicks: open, choose)."""
    box = page.get_by_label(label, exact=True).first
    option_loc = page.get_by_role("option", name=option, exact=True).first
    if counter is not None:
        counter.click(box, f"open {label}")
        counter.click(option_loc, option)
    else:
        box.click()
        option_loc.click()


def heatmap_rows(page) -> dict[str, dict[str, int]]:
    """{row label: {domain: n observations}} read from the drawn plotly heatmap."""
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for(timeout=LONG)
    # Waited for and read in one step: during a rerun the chart is replaced, and a check followed by
    # a separate read can catch the new plot before plotly has drawn its traces.
    traces = page.wait_for_function(
        "() => { const ts = Array.from(document.querySelectorAll("
        "'[data-testid=\"stPlotlyChart\"] .js-plotly-plot'))"
        ".flatMap(d => (d.data || []).filter(t => t.type === 'heatmap')"
        ".map(t => ({x: Array.from(t.x), y: Array.from(t.y), text: t.text})));"
        " return ts.length ? ts : null; }",
        timeout=SHORT,
    ).json_value()
    assert traces, "no heatmap drawn"
    t = traces[0]
    out: dict[str, dict[str, int]] = {}
    for i, row in enumerate(t["y"]):
        cells = {}
        for j, dom in enumerate(t["x"]):
            m = re.search(r"n\s*[=<]\s*(\d+)", str(t["text"][i][j] or ""))
            cells[dom] = int(m.group(1)) if m and "=" in m.group(0) else (0 if not m else -1)
        out[str(row)] = cells
    return out


def leader_heatmap_by_teacher(page, base: str, username: str, shot) -> tuple[str, dict[str, dict[str, int]]]:
    """(the window shown, {teacher: {domain: n}}) as a leader sees it."""
    sign_in(page, base, username)
    open_page(page, "Heatmap")
    expect(page.get_by_role("heading", name="Domain heatmap").first).to_be_visible(timeout=LONG)
    choose(page, "Rows", "Teacher")
    page.wait_for_timeout(500)
    rows = heatmap_rows(page)
    window = page.locator('[data-testid="stDateInput"] input').first.input_value()
    shot(page, "heatmap-by-teacher")
    return window, rows


def test_1_a_leader_sees_the_heatmap_by_teacher(app_server, page, shot):
    window, rows = leader_heatmap_by_teacher(page, app_server.url, app_server.accounts.leader, shot)
    assert len(rows) >= 3
    STATE["before"] = (window, rows)


def segmented(page, label):
    """A Streamlit segmented control: a radiogroup named by its label, one radio per option."""
    return page.get_by_role("radiogroup", name=label, exact=isinstance(label, str)).first


def test_2_a_coach_logs_an_observation_with_a_revisit_and_a_new_step_in_at_most_15_interactions(
    app_server, page, shot
):
    sign_in(page, app_server.url, app_server.accounts.coach)
    shot(page, "signed-in")
    n = Interactions()
    n.click(
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Observe", exact=True),
        "Observe",
    )
    expect(page.get_by_role("heading", name="Observe").first).to_be_visible(timeout=LONG)
    # The first teacher of the caseload who has an open step to revisit.
    n.click(page.get_by_label("Teacher", exact=True).first, "teacher box")
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    teacher_label = options.first.inner_text().strip()
    n.click(options.first, teacher_label)
    expect(page.get_by_role("heading", name="Scores").first).to_be_visible()
    shot(page, "teacher-picked")
    domains = ["Culture & Routines", "Safety & Behavior", "Engagement", "Checks for Understanding"]
    for i, name in enumerate(domains):
        group = segmented(page, name)
        n.click(group.get_by_role("radio", name=str(2 + i % 3), exact=True), f"{name} {2 + i % 3}")
        page.wait_for_timeout(150)
    open_step = segmented(page, re.compile(r"\(open, \d+ days\)$"))
    expect(open_step).to_be_visible()
    n.click(open_step.get_by_role("radio", name="Implemented", exact=True), "revisit implemented")
    page.wait_for_timeout(150)
    n.click(page.get_by_label("Library steps", exact=True).first, "library box")
    # Library options read "Domain: step"; the list also offers "Select all", which is not a step.
    lib_option = page.get_by_role("option").filter(has_text=":").first
    expect(lib_option).to_be_visible()
    n.click(lib_option, "library step")
    page.keyboard.press("Escape")  # close the list (not a choice)
    shot(page, "form-filled")
    n.click(page.get_by_role("button", name=re.compile("Save observation")), "save")
    expect(page.get_by_text(re.compile("Saved the observation")).first).to_be_visible(timeout=SHORT)
    shot(page, "saved")
    print(f"\n[e2e] logging an observation took {n.report()}")
    (ARTIFACTS / "interactions.txt").write_text(n.report() + "\n")
    assert n.count <= 15, n.report()

    # It is in the database, whole: 4 scores, 1 revisit, 1 new step.
    engine = create_engine(app_server.db_url)
    with Session(engine) as s:
        obs = s.exec(
            select(Observation).order_by(Observation.created_at.desc(), Observation.id.desc())
        ).first()
        teacher = s.get(Teacher, obs.teacher_id)
        scored = s.exec(
            select(func.count())
            .select_from(DomainScore)
            .where(DomainScore.observation_id == obs.id, DomainScore.score.is_not(None))
        ).one()
        revisits = s.exec(
            select(func.count()).select_from(Revisit).where(Revisit.observation_id == obs.id)
        ).one()
        new_steps = s.exec(
            select(func.count()).select_from(ActionStep).where(ActionStep.observation_id == obs.id)
        ).one()
    engine.dispose()
    assert teacher_label.startswith(teacher.name)
    assert (scored, revisits, new_steps) == (4, 1, 1)
    STATE["saved"] = {
        "teacher": teacher.name,
        "domains": domains,
        "observation_id": obs.id,
        "interactions": n.count,
    }


def test_9_the_leader_heatmap_shows_the_new_observation_and_meeting_mode_hides_names(app_server, page, shot):
    if "saved" not in STATE:
        pytest.skip("the coach's observation was not saved in this run")
    window, rows = leader_heatmap_by_teacher(page, app_server.url, app_server.accounts.leader, shot)
    teacher, scored = STATE["saved"]["teacher"], STATE["saved"]["domains"]
    before_window, before_rows = STATE["before"]
    # The default window is the latest school year with observations: an observation dated today
    # can open a new school year, in which nothing was there before it.
    before = before_rows.get(teacher, {}) if window == before_window else {}
    after = rows[teacher]
    grew = {d for d in after if after[d] > before.get(d, 0)}
    assert grew >= set(scored), (before, after)
    # Meeting mode: no teacher's name on the page, anonymous labels instead.
    page.get_by_text("Meeting mode", exact=True).click()
    deadline = time.monotonic() + 15  # the chart is redrawn after the rerun
    while (anon := heatmap_rows(page)) == rows and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.wait_for_timeout(500)  # let plotly finish drawing before the screenshot
    shot(page, "meeting-mode")
    assert teacher not in anon
    assert not set(anon) & set(rows)
    assert teacher not in page.locator('[data-testid="stMain"]').inner_text()
