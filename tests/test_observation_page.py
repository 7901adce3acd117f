"""The observation page under AppTest, as a coach (SQLite): what it shows and where its errors go."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from coaching.observations import record_observation
from tests._observe_helpers import assign, days_ago, draft, world
from tests._page_helpers import observation_page


@pytest.fixture
def w(sqlite_session):
    return world(sqlite_session)


def _set_goal(at: AppTest, text: str) -> None:
    next(t for t in at.text_input if t.label == "New goal").input(text)
    next(b for b in at.button if b.label == "Set goal").click().run()


def _errors_in_view(at: AppTest) -> list[str]:
    """Errors the coach sees without opening anything: those not inside an expander."""
    hidden = {id(e) for x in at.expander for e in x.error}
    return [e.value for e in at.error if id(e) not in hidden]


@pytest.fixture
def step_page(w, sqlite_session):
    (step,) = assign(sqlite_session, w.coach, w.teacher.id, days_ago(3), "Timed partner talk")
    return observation_page(w.coach.id, step.observation_id), step.id


def test_a_missing_drop_reason_after_setting_a_goal_is_shown_outside_the_collapsed_expander(step_page):
    at, step_id = step_page
    _set_goal(at, "Calm, fast starts")
    assert any("Goal set" in s.value for s in at.success)
    at.button(key=f"drop_{step_id}").click().run()  # the reason is left empty
    assert not at.exception
    assert any("why" in e for e in _errors_in_view(at)), [e.value for e in at.error]
    assert not at.success  # the earlier success is not shown as if it were this click's outcome


def test_an_empty_goal_after_marking_a_step_mastered_is_shown_outside_the_collapsed_expander(step_page):
    at, step_id = step_page
    at.button(key=f"master_{step_id}").click().run()
    assert any("mastered" in s.value for s in at.success)
    _set_goal(at, "")
    assert not at.exception
    assert any("Write the goal" in e for e in _errors_in_view(at)), [e.value for e in at.error]


def test_a_missing_drop_reason_on_a_fresh_page_is_shown_too(step_page):
    at, step_id = step_page
    at.button(key=f"drop_{step_id}").click().run()
    assert any("why" in e for e in _errors_in_view(at)), [e.value for e in at.error]


def test_domains_without_a_score_read_not_observed(w, sqlite_session):
    oid = record_observation(
        session=sqlite_session, draft=draft(w.teacher.id, days_ago(1), scores={"CR": 2}), by=w.coach
    ).id
    at = observation_page(w.coach.id, oid)
    scores = dict(zip(at.dataframe[0].value["Domain"], at.dataframe[0].value["Score"], strict=True))
    assert scores.pop("Culture & Routines") == "2"
    assert scores and set(scores.values()) == {"not observed"}
