"""The brief's facts from hand-made histories (SQLite and PostgreSQL): content, sources, scope,
bounded size, the records hash, and the offline brief."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from coaching import brief, grounding, llm
from coaching.errors import NotFound, PermissionDenied
from tests import factories
from tests._brief_helpers import NOW, TEACHER_NAME, goal, history, world


@pytest.fixture
def w(session):
    return world(session)


def _facts(session, w, **kw):
    kw.setdefault("now", NOW)
    return brief.build_facts(session=session, user=kw.pop("user", w.coach), teacher_id=w.teacher.id, **kw)


def _sources(value):
    """Every `source`-like dict in the facts."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("source", "previous_source", "last_observed") and isinstance(v, dict):
                yield v
            yield from _sources(v)
    elif isinstance(value, list):
        for v in value:
            yield from _sources(v)


def test_the_facts_hold_context_cadence_goal_steps_and_the_latest_against_the_previous(w, session):
    obs = history(session, w, 5)
    step = factories.step(session, obs[1], "Wait three seconds")
    factories.revisit(session, step, obs[3], "partial")
    factories.revisit(session, step, obs[4], "not_yet")
    goal(session, w)
    f = _facts(session, w)

    assert f["teacher"] == {
        "id": w.teacher.id,
        "name": TEACHER_NAME,
        "school": "Maplewood Elementary",
        "grade_band": "3-5",
        "subject": "ELA",
        "coach": "Dana Whitfield",
    }
    last = obs[-1]
    assert f["cadence"]["last_observed"] == {"observation_id": last.id, "date": "2026-02-27"}
    assert f["cadence"]["days_since_last"] == 3 and f["cadence"]["cadence_status"] == "ok"
    assert f["cadence"]["observations_total"] == 5
    assert f["goal"] == {
        "text": "Students start work within a minute",
        "domain": "CR",
        "set_on": "2026-03-02",
    }

    (s,) = f["steps"]
    assert (s["title"], s["state"], s["assigned_on"], s["days_open"], s["revisit_count"]) == (
        "Wait three seconds",
        "open",
        "2026-02-21",
        9,
        2,
    )
    assert [(r["date"], r["rating"], r["observation_id"]) for r in s["revisits"]] == [
        ("2026-02-25", "partial", obs[3].id),
        ("2026-02-27", "not_yet", obs[4].id),
    ]
    assert s["source"] == {"observation_id": obs[1].id, "date": "2026-02-21"}

    latest = f["latest"]
    assert latest["observation_id"] == last.id and latest["hours_since"] == 72.0 and latest["debrief_overdue"]
    # scores_for(4): CR=max(1,min(4,2+(4%3)-1))=2 ... and scores_for(3) for the previous one
    cmp_ = {c["domain"]: c for c in f["latest_vs_previous"]}
    assert (cmp_["CR"]["latest"], cmp_["CR"]["previous"], cmp_["CR"]["change"]) == (2, 1, 1)
    assert cmp_["CR"]["previous_source"] == {"observation_id": obs[3].id, "date": "2026-02-25"}
    assert "RI" not in cmp_ or cmp_["RI"]["previous"] != "not observed"
    assert {i["domain"] for i in f["improved"]} == {c for c, v in cmp_.items() if v.get("change", 0) > 0}
    assert {i["domain"] for i in f["slipped"]} == {c for c, v in cmp_.items() if v.get("change", 0) < 0}


def test_not_observed_marks_are_never_counted_as_numbers(w, session):
    factories.observation(session, w.teacher, w.coach, NOW - timedelta(days=4), {"CR": 2, "RI": None})
    factories.observation(session, w.teacher, w.coach, NOW - timedelta(days=2), {"CR": 4, "RI": None})
    f = _facts(session, w)
    assert f["latest"]["scores"] == {"CR": 4, "RI": "not observed"}
    assert f["latest"]["score"] == 4.0
    trends = {t["domain"]: t for t in f["domain_trends"]}
    assert set(trends) == {"CR"} and trends["CR"]["mean_all"] == 3.0 and trends["CR"]["scored"] == 2
    assert [c["domain"] for c in f["latest_vs_previous"]] == ["CR"]


def test_domain_and_block_trends_summarise_the_whole_history(w, session):
    obs = history(session, w, 8)
    f = _facts(session, w)
    cr = next(t for t in f["domain_trends"] if t["domain"] == "CR")
    from tests._brief_helpers import scores_for

    all_cr = [scores_for(i)["CR"] for i in range(8)]
    assert cr["mean_all"] == round(sum(all_cr) / 8, 2)
    assert cr["mean_recent"] == round(sum(all_cr[-3:]) / 3, 2)
    assert cr["mean_earlier"] == round(sum(all_cr[:-3]) / 5, 2)
    assert cr["source"] == {"observations": 8, "from": "2026-02-13", "to": "2026-02-27"}
    blocks = {b["block"]: b["source"]["observations"] for b in f["block_trends"]}
    assert blocks == {
        "Whole Group": 2,
        "Small Group Rotation": 2,
        "Intervention Block": 2,
        "Independent Practice": 2,
    }
    assert f["history"]["older"]["observations"] == 5
    assert f["history"]["latest_score"]["observation_id"] == obs[-1].id


def test_every_source_names_an_observation_or_a_range_of_dates(w, session):
    obs = history(session, w, 6)
    step = factories.step(session, obs[2], "Cold call")
    factories.revisit(session, step, obs[5], "implemented")
    f = _facts(session, w)
    ids = {o.id for o in obs}
    sources = list(_sources(f))
    assert len(sources) > 10
    for src in sources:
        if "observation_id" in src:
            assert src["observation_id"] in ids and len(src["date"]) == 10
        else:
            assert src["observations"] >= 1 and src["from"] <= src["to"]


def test_candidate_steps_come_from_the_library_for_the_lowest_domains(w, session):
    factories.observation(
        session, w.teacher, w.coach, NOW - timedelta(days=1), {"CR": 3, "SB": 1, "EN": 4, "CFU": 2, "RI": 3}
    )
    f = _facts(session, w)
    domains = [c["domain"] for c in f["candidate_steps"]]
    assert domains[:2] == ["SB", "CFU"] and len(domains) == 3
    assert f["candidate_steps"][0]["because"]["latest_score"] == 1


def test_a_teacher_with_no_observations_still_gets_facts_and_an_offline_brief(w, session):
    f = _facts(session, w)
    assert f["latest"] is None and f["cadence"]["cadence_status"] == "overdue"
    text = brief.offline_brief(f, "testing")
    assert "Not observed yet" in text and grounding.check(text, f) == []


def test_the_offline_brief_is_fully_grounded_in_the_facts(w, session):
    obs = history(session, w, 12)
    step = factories.step(session, obs[4], "Narrate the positive")
    factories.revisit(session, step, obs[8], "implemented")
    goal(session, w)
    f = _facts(session, w)
    text = brief.offline_brief(f, "no key")
    assert grounding.check(text, f) == []
    for heading in (
        "## Where things stand",
        "## Last observation",
        "## Action steps",
        "## Trends",
        "## Suggested focus",
    ):
        assert heading in text
    assert "**Praise:**" in text and "**Probing question:**" in text and "**Candidate next step:**" in text
    assert "Debrief overdue" in text


def test_a_300_observation_history_yields_a_prompt_no_larger_than_a_15_observation_one(session):
    sizes = {}
    for count in (15, 300):
        w = world(session) if count == 15 else _second_world(session)
        history(session, w, count)
        f = _facts(session, w)
        safe, _ = brief.private_facts(f)
        sizes[count] = len(llm.build_messages(safe)[1]["content"])
        assert len(f["recent_observations"]) == 3
    # Larger ids and counts add a few digits; nothing else may grow with the history.
    assert sizes[300] <= sizes[15] + 200, sizes


def _second_world(session):
    from db.models import School
    from tests._brief_helpers import World

    school = session.get(School, 1)
    coach = factories.user(session, "coach", name="Second Coach", schools=[school])
    t = factories.teacher(session, school, coach=coach, name="Second Teacher")
    return World(school, coach, None, None, None, t, None, None)


def test_the_records_hash_ignores_time_but_not_records(w, session):
    obs = history(session, w, 4)
    step = factories.step(session, obs[0], "Wait time")
    h1 = brief.records_hash(_facts(session, w))
    assert brief.records_hash(_facts(session, w, now=NOW + timedelta(days=9, hours=7))) == h1
    factories.revisit(session, step, obs[3], "partial")
    h2 = brief.records_hash(_facts(session, w))
    assert h2 != h1
    obs[3].notes = "Changed note"
    session.add(obs[3])
    session.commit()
    assert brief.records_hash(_facts(session, w)) != h2


def test_only_coaches_and_admins_of_the_teacher_build_briefs(w, session):
    history(session, w, 2)
    assert _facts(session, w, user=w.admin)["teacher"]["id"] == w.teacher.id
    with pytest.raises(PermissionDenied):
        _facts(session, w, user=w.teacher_login)
    with pytest.raises(PermissionDenied):
        _facts(session, w, user=w.leader)
    with pytest.raises(NotFound):
        _facts(session, w, user=w.other_coach)
    with pytest.raises(NotFound):
        brief.list_briefs(session=session, user=w.other_coach, teacher_id=w.teacher.id)


def test_saved_briefs_keep_facts_and_download_as_markdown(w, session):
    history(session, w, 3)
    result = brief.generate_brief(
        session=session, user=w.coach, teacher_id=w.teacher.id, client=None, now=NOW
    )
    saved = brief.list_briefs(session=session, user=w.coach, teacher_id=w.teacher.id)
    assert [b.id for b in saved] == [result.brief.id]
    assert json.loads(saved[0].facts_json)["teacher"]["name"] == TEACHER_NAME
    md = brief.brief_markdown(saved[0])
    assert md.startswith(f"# Prep brief: {TEACHER_NAME}") and "Not an evaluation" in md
    assert brief.get_brief(session=session, user=w.coach, brief_id=result.brief.id).id == result.brief.id
    with pytest.raises(NotFound):
        brief.get_brief(session=session, user=w.other_coach, brief_id=result.brief.id)
