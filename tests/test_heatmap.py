"""Heatmap aggregates equal a plain-Python computation over the same hand-made rows, on both databases."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from datetime import date, datetime

import pytest
from sqlmodel import select

from coaching import anonymise, heatmap
from coaching.errors import PermissionDenied
from coaching.heatmap import HeatmapFilters
from coaching.timeutil import local_date
from db.models import Block, Domain, RubricVersion
from tests import factories

CODES = ["CR", "SB", "EN", "CFU", "RIG", "SG", "RI", "LD"]
BLOCKS = ["WG", "SGR", "INT", "IP", "TR"]


@pytest.fixture
def world(session):
    """Two schools, a leader and a coach of school A, teachers in both, ~60 observations."""
    factories.rubric(session)
    a = factories.school(session, name="Alder Elementary")
    b = factories.school(session, name="Birch Elementary")
    admin = factories.user(session, "admin", name="Ada Admin")
    leader_a = factories.user(session, "leader", name="Lena Leader", schools=[a])
    coach_a = factories.user(session, "coach", name="Cora Coach", schools=[a])
    coach_b = factories.user(session, "coach", name="Boris Coach", schools=[b])
    teachers = [
        factories.teacher(session, a, coach=coach_a, name="Tess Alpha", grade_band="K-2"),
        factories.teacher(session, a, coach=coach_a, name="Tom Bravo", grade_band="3-5"),
        factories.teacher(session, a, coach=coach_b, name="Tia Charlie", grade_band="3-5"),
        factories.teacher(session, b, coach=coach_b, name="Ty Delta", grade_band="K-2"),
        factories.teacher(session, b, coach=coach_b, name="Tara Echo", grade_band="6-8"),
    ]
    blocks = {b.code: b.id for b in session.exec(select(Block))}
    rng = random.Random(7)
    records = []  # independent copy of what was stored: the test's own truth
    for i in range(60):
        t = teachers[i % len(teachers)]
        observer = coach_a if (t.coach_id == coach_a.id and i % 3) else coach_b
        when = datetime(2025, 8 + (i % 5), 1 + (i * 7) % 28, 8 + i % 9, (i * 13) % 60)
        scores = {c: rng.choice([1, 2, 3, 4, None]) for c in rng.sample(CODES, k=rng.randint(2, 8))}
        block = BLOCKS[i % len(BLOCKS)]
        obs = factories.observation(session, t, observer, when, scores, block_code=block, notes="secret note")
        records.append(
            {
                "id": obs.id,
                "school": t.school_id,
                "grade": t.grade_band,
                "teacher": t.id,
                "block": blocks[block],
                "coach": observer.id,
                "day": when.date(),
                "month": when.strftime("%Y-%m"),
                "scores": scores,
            }
        )
    return {
        "a": a,
        "b": b,
        "admin": admin,
        "leader_a": leader_a,
        "coach_a": coach_a,
        "coach_b": coach_b,
        "teachers": teachers,
        "records": records,
        "blocks": blocks,
    }


def expected_cells(records, dim, keep=lambda r: True):
    """Plain Python: {(row key, domain code): (mean, n observations)} over numeric scores."""
    acc = defaultdict(list)
    for r in records:
        if not keep(r):
            continue
        for code, score in r["scores"].items():
            if score is not None:
                acc[(r[dim], code)].append(score)
    return {k: (sum(v) / len(v), len(v)) for k, v in acc.items()}


def as_dict(cells):
    return {
        (k, c): (m, n)
        for k, c, m, n in zip(cells.row_key, cells.domain_code, cells["mean"], cells.n_obs, strict=True)
    }


def assert_same(got, want):
    assert set(got) == set(want)
    for key, (mean, n) in want.items():
        assert got[key][1] == n, key
        assert got[key][0] == pytest.approx(mean), key


@pytest.mark.parametrize("dim", sorted(heatmap.DIMENSIONS))
def test_means_and_counts_by_each_row_dimension_equal_a_plain_python_computation(session, world, dim):
    cells = heatmap.heatmap_cells(session=session, user=world["admin"], rows=dim, filters=HeatmapFilters())
    assert_same(as_dict(cells), expected_cells(world["records"], dim))
    assert (cells.n_obs == cells.n_scores).all()


def test_row_labels_are_names_from_the_small_tables(session, world):
    cells = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="teacher", filters=HeatmapFilters()
    )
    assert set(cells.row_label) == {t.name for t in world["teachers"]}
    assert list(dict.fromkeys(cells.row_label)) == sorted({t.name for t in world["teachers"]})
    schools = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="school", filters=HeatmapFilters()
    )
    assert set(schools.row_label) == {"Alder Elementary", "Birch Elementary"}


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2025, 9, 1), date(2025, 10, 31)),
        (date(2025, 9, 8), date(2025, 11, 15)),
        (None, date(2025, 9, 20)),
        (date(2025, 9, 8), date(2025, 10, 31)),
        (date(2025, 9, 1), date(2025, 11, 15)),
        (date(2025, 10, 9), date(2025, 10, 20)),
        (date(2025, 10, 9), None),
    ],
)
def test_date_windows_narrow_to_the_inclusive_school_local_days(session, world, start, end):
    cells = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="school", filters=HeatmapFilters(start=start, end=end)
    )
    keep = lambda r: (start is None or r["day"] >= start) and (end is None or r["day"] <= end)  # noqa: E731
    assert_same(as_dict(cells), expected_cells(world["records"], "school", keep))


def test_a_late_evening_observation_counts_on_its_local_day_not_its_utc_day(session, world):
    t = world["teachers"][0]
    # 23:30 in Los Angeles on 31 March is already 1 April in UTC.
    late = factories.observation(session, t, world["coach_a"], datetime(2026, 3, 31, 23, 30), {"CR": 4})
    assert late.observed_at.date() == date(2026, 4, 1)
    early = factories.observation(session, t, world["coach_a"], datetime(2026, 4, 1, 0, 10), {"CR": 1})
    for start, end, want in [
        (date(2026, 3, 31), date(2026, 3, 31), [4]),
        (date(2026, 3, 1), date(2026, 3, 31), [4]),
        (date(2026, 4, 1), date(2026, 4, 30), [1]),
        (date(2026, 4, 1), date(2026, 4, 1), [1]),
        (date(2026, 3, 31), date(2026, 4, 1), [4, 1]),
    ]:
        cells = heatmap.heatmap_cells(
            session=session, user=world["admin"], rows="teacher", filters=HeatmapFilters(start=start, end=end)
        )
        cell = cells[(cells.row_key == t.id) & (cells.domain_code == "CR")]
        assert cell["mean"].item() == pytest.approx(sum(want) / len(want)), (start, end)
        assert cell.n_obs.item() == len(want)
        listed = heatmap.cell_observations(
            session=session,
            user=world["admin"],
            rows="teacher",
            row_key=t.id,
            domain_code="CR",
            filters=HeatmapFilters(start=start, end=end),
        )
        assert set(listed.id) <= {late.id, early.id}
        assert len(listed) == len(want)
    assert local_date(late.observed_at) == date(2026, 3, 31)


def test_school_grade_block_and_rubric_filters_narrow_correctly(session, world):
    a, recs = world["a"], world["records"]
    wg = world["blocks"]["WG"]
    cases = [
        (HeatmapFilters(school_ids=[a.id]), lambda r: r["school"] == a.id),
        (HeatmapFilters(grade_bands=["3-5"]), lambda r: r["grade"] == "3-5"),
        (HeatmapFilters(block_ids=[wg]), lambda r: r["block"] == wg),
        (
            HeatmapFilters(
                school_ids=[a.id], grade_bands=["K-2", "3-5"], block_ids=[wg, world["blocks"]["INT"]]
            ),
            lambda r: r["school"] == a.id and r["block"] in (wg, world["blocks"]["INT"]),
        ),
        (HeatmapFilters(school_ids=[]), lambda r: False),
    ]
    for filters, keep in cases:
        cells = heatmap.heatmap_cells(session=session, user=world["admin"], rows="teacher", filters=filters)
        assert_same(as_dict(cells), expected_cells(recs, "teacher", keep))
    current = session.exec(select(RubricVersion)).one()
    cells = heatmap.heatmap_cells(
        session=session,
        user=world["admin"],
        rows="block",
        filters=HeatmapFilters(rubric_version_ids=[current.id]),
    )
    assert_same(as_dict(cells), expected_cells(recs, "block"))
    none = heatmap.heatmap_cells(
        session=session,
        user=world["admin"],
        rows="block",
        filters=HeatmapFilters(rubric_version_ids=[current.id + 99]),
    )
    assert none.empty


def test_a_leader_of_school_a_never_sees_school_b(session, world):
    a = world["a"]
    for dim in heatmap.DIMENSIONS:
        cells = heatmap.heatmap_cells(
            session=session, user=world["leader_a"], rows=dim, filters=HeatmapFilters()
        )
        assert_same(as_dict(cells), expected_cells(world["records"], dim, lambda r: r["school"] == a.id))
    # Asking for school B explicitly still gives nothing.
    cells = heatmap.heatmap_cells(
        session=session,
        user=world["leader_a"],
        rows="school",
        filters=HeatmapFilters(school_ids=[world["b"].id]),
    )
    assert cells.empty


def test_a_coach_sees_their_schools_aggregates_but_teacher_rows_only_for_teachers_they_may_see(
    session, world
):
    a, coach = world["a"], world["coach_a"]
    school = heatmap.heatmap_cells(session=session, user=coach, rows="school", filters=HeatmapFilters())
    assert_same(as_dict(school), expected_cells(world["records"], "school", lambda r: r["school"] == a.id))
    rows = heatmap.heatmap_cells(session=session, user=coach, rows="teacher", filters=HeatmapFilters())
    tess, tom, tia = world["teachers"][:3]
    # Tia is in school A but coached by someone else and never observed by this coach.
    made = {r["teacher"] for r in world["records"] if r["coach"] == coach.id}
    allowed = {tess.id, tom.id} | made
    assert tia.id not in allowed
    assert set(rows.row_key) == allowed
    assert_same(
        as_dict(rows),
        expected_cells(
            world["records"], "teacher", lambda r: r["teacher"] in allowed and r["school"] == a.id
        ),
    )


def test_a_teacher_cannot_build_a_heatmap(session, world):
    login = factories.user(session, "teacher")
    factories.teacher(session, world["a"], login=login)
    with pytest.raises(PermissionDenied):
        heatmap.heatmap_cells(session=session, user=login, rows="school", filters=HeatmapFilters())
    with pytest.raises(PermissionDenied):
        heatmap.monthly_trend(session=session, user=login, filters=HeatmapFilters())


def test_a_cell_lists_exactly_the_observations_behind_it_without_notes(session, world):
    tom = world["teachers"][1]
    want = {r["id"] for r in world["records"] if r["teacher"] == tom.id and r["scores"].get("EN") is not None}
    listed = heatmap.cell_observations(
        session=session,
        user=world["admin"],
        rows="teacher",
        row_key=tom.id,
        domain_code="EN",
        filters=HeatmapFilters(),
    )
    assert set(listed.id) == want
    assert {"id", "date", "teacher", "observer", "block", "score"} <= set(listed.columns)
    assert "secret note" not in listed.to_csv()
    # A coach only sees the observations they may read (their caseload or made by them).
    coach_b = world["coach_b"]
    by_b = heatmap.cell_observations(
        session=session,
        user=coach_b,
        rows="block",
        row_key=world["blocks"]["WG"],
        domain_code="EN",
        filters=HeatmapFilters(),
    )
    caseload_b = {t.id for t in world["teachers"] if t.coach_id == coach_b.id}
    for r in world["records"]:
        if r["id"] in set(by_b.id):
            assert r["coach"] == coach_b.id or r["teacher"] in caseload_b


def test_monthly_trend_equals_a_plain_python_monthly_mean(session, world):
    trend = heatmap.monthly_trend(session=session, user=world["admin"], filters=HeatmapFilters())
    got = {
        (m, c): (v, n)
        for m, c, v, n in zip(trend.month, trend.domain_code, trend["mean"], trend.n_obs, strict=True)
    }
    assert_same(got, expected_cells(world["records"], "month"))
    assert list(trend.month) == sorted(trend.month)


def test_domain_names_come_from_the_newest_version_and_retired_domains_stay_in_history(session, world):
    v1 = session.exec(select(RubricVersion)).one()
    v2 = RubricVersion(version=v1.version + 1, name="Revised", is_current=False)
    session.add(v2)
    session.flush()
    for d in session.exec(select(Domain).where(Domain.rubric_version_id == v1.id)).all():
        if d.code == "LD":
            continue  # retired in v2
        session.add(Domain(rubric_version_id=v2.id, code=d.code, name=f"{d.name} (v2)", position=d.position))
    session.commit()
    cells = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="school", filters=HeatmapFilters()
    )
    names = dict(zip(cells.domain_code, cells.domain_name, strict=False))
    assert names["CR"] == "Culture & Routines (v2)"
    assert names["LD"] == "Lesson Delivery"


def test_meeting_mode_labels_are_stable_distinct_and_free_of_names(session, world):
    salt = anonymise.meeting_salt(session=session)
    assert anonymise.meeting_salt(session=session) == salt
    cells = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="teacher", filters=HeatmapFilters()
    )
    once = anonymise.meeting_cells(cells, rows="teacher", salt=salt)
    again = anonymise.meeting_cells(cells.sample(frac=1, random_state=3), rows="teacher", salt=salt)
    first = dict(zip(once.row_key, once.row_label, strict=False))
    assert first == dict(zip(again.row_key, again.row_label, strict=False))
    assert len(set(first.values())) == len(first)
    assert all(label.startswith("Teacher ") for label in first.values())
    names = {t.name for t in world["teachers"]}
    assert not names & set(once.row_label)
    # Ordered by the anonymous label, not by the real name behind it.
    assert list(dict.fromkeys(once.row_label)) == sorted(set(once.row_label))
    assert first != dict(
        zip(
            anonymise.meeting_cells(cells, rows="teacher", salt="other").row_key,
            anonymise.meeting_cells(cells, rows="teacher", salt="other").row_label,
            strict=False,
        )
    )


def test_meeting_mode_suppresses_cells_built_from_fewer_than_three_observations(session, world):
    cells = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="teacher", filters=HeatmapFilters()
    )
    out = anonymise.meeting_cells(cells, rows="teacher", salt="s")
    small = out.n_obs < 3
    assert small.any() and (~small).any()
    assert out.loc[small, "mean"].isna().all()
    assert (out.loc[small, "text"] == "n<3").all()
    assert out.loc[~small, "mean"].notna().all()
    from coaching.charts import heatmap_figure

    fig = heatmap_figure(out, meeting_mode=True)
    texts = [t for row in fig.data[0].text for t in row]
    assert "n<3" in texts
    z = fig.data[0].z
    rows, cols = list(fig.data[0].y), list(fig.data[0].x)
    for label, dom, sup in zip(out.row_label, out.domain_name, out.suppressed, strict=True):
        value = z[rows.index(label)][cols.index(dom)]
        assert (value != value) == bool(sup)  # NaN exactly where suppressed


def test_a_cell_suppressed_in_meeting_mode_cannot_be_opened(session, world):
    cells = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="teacher", filters=HeatmapFilters()
    )
    everything = heatmap.cell_choices(cells)
    assert list(everything.labels) == list(zip(cells.row_key, cells.domain_code, strict=True))
    assert everything.hidden == 0
    out = anonymise.meeting_cells(cells, rows="teacher", salt="s")
    choices = heatmap.cell_choices(out)
    big = out[~out.suppressed]
    assert list(choices.labels) == list(zip(big.row_key, big.domain_code, strict=True))
    assert choices.hidden == int(out.suppressed.sum()) > 0
    assert set(choices.labels.values()) == set(big.row_label + " · " + big.domain_name)
    assert set(choices.at_point.values()) == set(choices.labels)  # a click on a blank cell opens nothing
    none = heatmap.cell_choices(anonymise.meeting_cells(cells[cells.n_obs < 3], rows="teacher", salt="s"))
    assert none.labels == {} and none.at_point == {} and none.hidden == int((cells.n_obs < 3).sum())


def test_meeting_mode_downloads_drop_people_ids_but_keep_other_row_keys(session, world):
    cells = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="teacher", filters=HeatmapFilters()
    )
    out = anonymise.without_people_ids(
        anonymise.meeting_cells(cells, rows="teacher", salt="s"), rows="teacher"
    )
    assert "row_key" not in out.columns
    csv = out.to_csv(index=False)
    assert not any(t.name in csv for t in world["teachers"])
    schools = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="school", filters=HeatmapFilters()
    )
    assert "row_key" in anonymise.without_people_ids(schools, rows="school").columns


def test_a_chart_download_is_png_or_html_with_plotly_embedded_never_a_cdn_link():
    import pandas as pd

    from coaching.charts import chart_format, figure_bytes, heatmap_figure

    cells = pd.DataFrame(
        [
            {
                "row_key": 1,
                "row_label": "A",
                "domain_code": "CR",
                "domain_name": "Culture",
                "mean": 2.5,
                "n_obs": 4,
                "n_scores": 4,
            }
        ]
    )
    data = figure_bytes(heatmap_figure(cells, meeting_mode=False))
    ext, mime = chart_format()
    if ext == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and mime == "image/png"
    else:
        html = data.decode("utf-8")
        assert mime == "text/html"
        # plotly.js mentions its CDN internally (map data); what matters is no script loaded from one.
        assert not re.search(r"<script[^>]*\bsrc=", html)
        assert len(html) > 1_000_000  # plotly.js itself is inside


def test_two_teachers_with_the_same_name_stay_two_rows(session, world):
    twin = factories.teacher(session, world["a"], name="Tess Alpha", grade_band="K-2")
    factories.observation(session, twin, world["coach_a"], datetime(2025, 9, 9, 9), {"CR": 4})
    cells = heatmap.heatmap_cells(
        session=session, user=world["admin"], rows="teacher", filters=HeatmapFilters()
    )
    labels = dict(zip(cells.row_key, cells.row_label, strict=False))
    assert len(set(labels.values())) == len(labels)
    assert labels[twin.id] == f"Tess Alpha (#{twin.id})"
