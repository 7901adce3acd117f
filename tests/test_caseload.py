"""The caseload table: who each role sees, cadence status, open steps, debriefs, urgency order."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from coaching.caseload import caseload, pending_debriefs
from coaching.errors import PermissionDenied
from coaching.observations import log_debrief, record_observation
from coaching.timeutil import local_date
from tests import factories
from tests._observe_helpers import NOW, assign, days_ago, draft, world


@pytest.fixture
def w(session):
    return world(session)


def test_rows_are_sorted_by_urgency_with_cadence_status(session, w):
    school = w.school
    recent = factories.teacher(session, school, coach=w.coach, name="Rita Recent")
    due = factories.teacher(session, school, coach=w.coach, name="Dan Due")
    late = factories.teacher(session, school, coach=w.coach, name="Lou Late")
    later = factories.teacher(session, school, coach=w.coach, name="Lia Later")
    # w.teacher (Tess) is never observed
    for t, ago in [(recent, 3), (due, 15), (late, 29), (later, 40)]:
        record_observation(session=session, draft=draft(t.id, days_ago(ago)), by=w.coach)
    df = caseload(session=session, user=w.coach, today=local_date(NOW))
    assert list(df["teacher"]) == ["Tess Teacher", "Lia Later", "Lou Late", "Dan Due", "Rita Recent"]
    assert list(df["status"]) == ["overdue", "overdue", "overdue", "due", "ok"]
    assert pd.isna(df.iloc[0]["days_since"])
    assert list(df["days_since"])[1:] == [40, 29, 15, 3]
    assert "Oscar Elsewhere" not in set(df["teacher"])


def test_open_steps_past_check_back_and_oldest_open_days(session, w):
    assign(session, w.coach, w.teacher.id, days_ago(20), "Old one")
    assign(session, w.coach, w.teacher.id, days_ago(5), "New one")
    row = (
        caseload(session=session, user=w.coach, today=local_date(NOW))
        .set_index("teacher")
        .loc["Tess Teacher"]
    )
    assert row["open_steps"] == 2
    assert row["steps_past_check_back"] == 1
    assert row["oldest_open_step_days"] == 20


def test_debriefs_pending_and_flagged_after_48_hours(session, w):
    a = record_observation(session=session, draft=draft(w.teacher.id, days_ago(5)), by=w.coach)
    record_observation(session=session, draft=draft(w.teacher.id, days_ago(3)), by=w.coach)
    record_observation(session=session, draft=draft(w.teacher.id, NOW - timedelta(hours=10)), by=w.coach)
    log_debrief(session=session, observation_id=a.id, debriefed_at=days_ago(4), notes="ok", by=w.coach)
    row = caseload(session=session, user=w.coach, now=NOW).set_index("teacher").loc["Tess Teacher"]
    assert (row["debriefs_pending"], row["flagged_debriefs"]) == (2, 1)
    pending = pending_debriefs(session=session, user=w.coach, now=NOW)
    assert [p["flagged"] for p in pending] == [True, False]


def test_leaders_see_their_schools_and_admins_everyone(session, w):
    other_school = factories.school(session)
    factories.teacher(session, other_school, name="Far Away")
    leader_rows = set(caseload(session=session, user=w.leader)["teacher"])
    assert leader_rows == {"Tess Teacher", "Oscar Elsewhere"}
    assert set(caseload(session=session, user=w.admin)["teacher"]) == {
        "Tess Teacher",
        "Oscar Elsewhere",
        "Far Away",
    }


def test_teachers_have_no_caseload(session, w):
    with pytest.raises(PermissionDenied):
        caseload(session=session, user=w.teacher_login)


def test_due_and_overdue_days_are_configurable(session, w, monkeypatch):
    from coaching.settings import get_settings

    record_observation(session=session, draft=draft(w.teacher.id, days_ago(8)), by=w.coach)
    monkeypatch.setenv("COACHLOOP_DUE_DAYS", "5")
    monkeypatch.setenv("COACHLOOP_OVERDUE_DAYS", "7")
    get_settings.cache_clear()
    try:
        df = caseload(session=session, user=w.coach, today=local_date(NOW))
        assert df.set_index("teacher").loc["Tess Teacher", "status"] == "overdue"
    finally:
        get_settings.cache_clear()


def _mark_demo(session, value: dict) -> None:
    import json

    from coaching.caseload import DEMO_KEY
    from db.models import AppSetting

    session.add(AppSetting(key=DEMO_KEY, value=json.dumps(value)))
    session.commit()


def test_the_demo_note_explains_overdue_teachers_once_the_demo_year_is_over(session, w):
    from datetime import date

    from coaching.caseload import demo_dates_note

    assert demo_dates_note(session=session, today=date(2026, 11, 23)) is None  # not a demo database
    _mark_demo(session, {"seed": 1, "last_day": "2026-06-12"})
    assert demo_dates_note(session=session, today=date(2026, 6, 20)) is None  # still inside the cadence
    note = demo_dates_note(session=session, today=date(2026, 11, 23))
    assert note is not None and "2026-06-12" in note and "overdue" in note


def test_the_demo_note_falls_back_to_the_latest_observation_for_an_older_demo(session, w):
    from coaching.caseload import demo_dates_note

    record_observation(session=session, draft=draft(w.teacher.id, days_ago(60)), by=w.coach)
    _mark_demo(session, {"seed": 1})
    today = local_date(NOW)
    note = demo_dates_note(session=session, today=today)
    assert note is not None and local_date(days_ago(60)).isoformat() in note
    assert demo_dates_note(session=session, today=local_date(days_ago(50))) is None


def test_the_caseload_page_shows_the_demo_note_on_a_finished_demo_year(sqlite_session):
    from tests._page_helpers import open_page

    w = world(sqlite_session)

    def page_infos() -> list[str]:
        at = open_page(w.coach.id, "app_pages/caseload.py")
        assert [t.value for t in at.title] == ["Caseload"]
        return [i.value for i in at.info]

    assert not any("demo school year" in i for i in page_infos())
    _mark_demo(sqlite_session, {"seed": 1, "last_day": "2020-06-12"})
    assert any("demo school year, which ended 2020-06-12" in i for i in page_infos())
