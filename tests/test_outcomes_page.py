"""The outcomes page shows exactly coaching.metrics' figures, scoped to the viewer's schools."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from coaching import metrics
from db.engine import get_engine
from tests import factories

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "app_pages/outcomes.py"
WINDOW = (date(2025, 8, 1), date(2026, 7, 31))


@pytest.fixture
def site(sqlite_url):
    """Two schools; in school A three teachers with steps and revisits, in school B one teacher."""
    with Session(get_engine(), expire_on_commit=False) as s:
        factories.rubric(s)
        a = factories.school(s, name="Aspen Primary")
        b = factories.school(s, name="Beech Primary")
        coach = factories.user(s, "coach", schools=[a])
        leader = factories.user(s, "leader", schools=[a])
        admin = factories.user(s, "admin")
        tlogin = factories.user(s, "teacher")
        t1 = factories.teacher(s, a, coach=coach)
        t2 = factories.teacher(s, a, coach=coach, login=tlogin)
        t3 = factories.teacher(s, a, coach=coach)
        t4 = factories.teacher(s, b)
        rows = []  # (school, teacher, {code: score}) of every observation: the test's own record

        def obs(t, when, scores, h=None):
            o = factories.observation(s, t, coach, when, scores, debriefed_after_h=h)
            rows.append((t.school_id, t.id, scores))
            return o

        o1 = obs(t1, datetime(2025, 9, 2, 9), {"CR": 1, "SB": 2, "EN": None}, 5)
        st1 = factories.step(s, o1)
        o2 = obs(t1, datetime(2025, 9, 20, 9), {"CR": 2, "SB": 2}, 30)
        factories.revisit(s, st1, o2, "partial")
        o3 = obs(t1, datetime(2025, 10, 15, 9), {"CR": 3, "SB": 3}, 60)
        factories.revisit(s, st1, o3, "implemented")
        p1 = obs(t2, datetime(2025, 9, 3, 10), {"CR": 3, "RI": 4}, 1)
        st2 = factories.step(s, p1)
        p2 = obs(t2, datetime(2025, 11, 3, 10), {"CR": 4, "RI": 4})
        factories.revisit(s, st2, p2, "implemented")
        obs(t3, datetime(2025, 9, 4, 11), {"EN": 2, "SB": 1}, 12)
        obs(t4, datetime(2025, 9, 5, 11), {"CR": 4, "SB": 4}, 2)
        obs(t4, datetime(2025, 10, 5, 11), {"CR": 4, "SB": 3}, 2)
        return {
            "a": a,
            "b": b,
            "coach": coach,
            "leader": leader,
            "admin": admin,
            "tlogin": tlogin,
            "rows": rows,
        }


def open_page(user_id: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = user_id
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def expected_cards(fig: dict) -> dict[str, str]:
    pct = lambda x: "–" if x is None else f"{x:.1%}"  # noqa: E731
    num = lambda x, d=2, u="": "–" if x is None else f"{x:.{d}f}{u}"  # noqa: E731
    as_of = f"as of {date.fromisoformat(fig['coverage']['as_of']):%d %b %Y}"
    return {
        "Observations": f"{fig['observations']:,}",
        "Teachers observed": f"{fig['teachers_observed']:,}",
        "Action steps": f"{fig['action_steps']:,}",
        "Steps per teacher": num(fig["steps_per_teacher"], 1),
        "Start score": num(fig["start_score"]),
        "End score": num(fig["end_score"]),
        "Gain": num(fig["gain"]),
        "Relative gain": pct(fig["relative_gain"]),
        "Sustained coaching": pct(fig["sustained_coaching_share"]),
        "Stick rate": pct(fig["stick_rate"]),
        "Effort vs need (Spearman)": num(fig["effort_need_spearman"]),
        "Feedback latency (median)": num(fig["feedback_latency_median_h"], 1, " h"),
        "Debriefed within 48 h": pct(fig["feedback_within_48h_share"]),
        f"Teachers due {as_of}": f"{fig['coverage']['due']:,}",
        f"Teachers overdue {as_of}": f"{fig['coverage']['overdue']:,}",
        f"Coverage {as_of}": pct(fig["coverage"]["share_not_overdue"]),
    }


@pytest.mark.parametrize("role", ["leader", "coach", "admin"])
def test_the_outcomes_page_renders_for_leaders_coaches_and_admins(site, role):
    at = open_page(site[role].id)
    assert len(at.metric) == 16
    assert len(at.download_button) == 4


def test_a_teacher_cannot_open_the_outcomes_page(site):
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = site["tlogin"].id
    at.run()
    with pytest.raises(ValueError):
        at.switch_page(PAGE).run()


def test_a_leaders_figures_equal_program_metrics_for_their_school(site):
    at = open_page(site["leader"].id)
    with Session(get_engine()) as s:
        want = metrics.program_metrics(session=s, start=WINDOW[0], end=WINDOW[1], school_ids=[site["a"].id])
        by_school = metrics.metrics_by_school(
            session=s, start=WINDOW[0], end=WINDOW[1], school_ids=[site["a"].id]
        )
    assert shown(at) == expected_cards(want)
    table = at.dataframe[1].value
    assert list(table["school"]) == ["Aspen Primary"]
    assert table["observations"].item() == by_school[0]["observations"]
    assert table["stick_rate"].item() == pytest.approx(by_school[0]["stick_rate"])
    assert "Beech Primary" not in json.dumps([str(el.proto) for el in at.main])


def test_an_admin_sees_every_school_and_can_narrow_to_one(site):
    at = open_page(site["admin"].id)
    with Session(get_engine()) as s:
        everything = metrics.program_metrics(session=s, start=WINDOW[0], end=WINDOW[1])
        only_b = metrics.program_metrics(session=s, start=WINDOW[0], end=WINDOW[1], school_ids=[site["b"].id])
    assert shown(at) == expected_cards(everything)
    assert set(at.dataframe[1].value["school"]) == {"Aspen Primary", "Beech Primary"}
    at.multiselect(key="oc_schools").set_value([site["b"].id]).run()
    assert not at.exception
    assert shown(at) == expected_cards(only_b)


def test_the_page_figures_match_a_plain_python_recount_of_the_rows(site):
    at = open_page(site["leader"].id)
    rows = [r for r in site["rows"] if r[0] == site["a"].id]
    assert shown(at)["Observations"] == str(len(rows))
    assert shown(at)["Teachers observed"] == str(len({t for _, t, _ in rows}))
    # Stick rate: 2 of the 3 revisits in school A were rated implemented.
    assert shown(at)["Stick rate"] == "66.7%"
    # Domains strongest to weakest, from the numeric scores alone.
    sums: dict[str, list[int]] = {}
    for _, _, scores in rows:
        for code, score in scores.items():
            if score is not None:
                sums.setdefault(code, []).append(score)
    means = sorted(((sum(v) / len(v)) for v in sums.values()), reverse=True)
    ranked = at.dataframe[0].value
    assert list(ranked["mean"]) == pytest.approx(means)


def column_config(table) -> dict[str, dict]:
    """What st.dataframe was told about each column: its label and number format."""
    return json.loads(table.proto.columns)


def test_the_by_school_table_has_readable_labels_school_names_and_rounded_numbers(site):
    at = open_page(site["leader"].id)
    by_school = at.dataframe[1]
    config = column_config(by_school)
    order = list(by_school.proto.column_order)
    assert order[0] == "school" and by_school.value["school"].item() == "Aspen Primary"
    hidden = [c for c in order if c == "school_id" or c.startswith(("window.", "domain_means_by_code."))]
    assert not hidden
    labels = {c: config[c]["label"] for c in order}
    assert all("_" not in label for label in labels.values()), labels
    assert labels["action_steps"] == "Action steps" and labels["start_score"] == "Start score"
    assert labels["domain_means.Culture & Routines"] == "Culture & Routines"
    fmt = {c: config[c]["type_config"].get("format") for c in order}
    assert fmt["start_score"] == fmt["gain"] == fmt["domain_means.Engagement"] == "%.2f"
    assert fmt["stick_rate"] == fmt["relative_gain"] == fmt["coverage.share_not_overdue"] == "percent"
    assert fmt["observations"] == "localized"


def test_the_domain_table_rounds_means_to_two_decimals(site):
    at = open_page(site["leader"].id)
    config = column_config(at.dataframe[0])
    assert config["mean"] == {"label": "Mean score", "type_config": {"type": "number", "format": "%.2f"}}
    assert config["domain"]["label"] == "Domain" and config["rank"]["label"] == "Rank"


def test_coverage_of_a_past_window_is_labelled_with_the_day_it_is_counted_on(site):
    at = open_page(site["leader"].id)
    at.date_input(key="oc_window").set_value((date(2024, 8, 1), date(2025, 7, 31))).run()
    assert not at.exception
    cards = shown(at)
    assert cards["Teachers overdue as of 31 Jul 2025"] == "3"  # none of school A seen by then
    assert cards["Coverage as of 31 Jul 2025"] == "0.0%"
    assert not [label for label in cards if label in ("Teachers due", "Teachers overdue", "Coverage")]
    headers = [c["label"] for c in column_config(at.dataframe[1]).values() if "label" in c]
    assert "Coverage as of 31 Jul 2025" in headers
