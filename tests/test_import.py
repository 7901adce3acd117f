"""CSV/XLSX import: real files in tests/data, dry run first, all-or-nothing, idempotent (both DBs)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, text
from sqlmodel import select

from coaching import importer
from coaching.errors import PermissionDenied, ValidationError
from db.models import (
    ActionStep,
    AuditLog,
    DomainScore,
    ImportBatch,
    Observation,
    School,
    StepEvent,
    Teacher,
    UserSchool,
)
from tests._import_helpers import DATA, import_file, people

MESSY_PROBLEMS = {
    7: ["duplicate of row 2"],
    8: ["CR score '5' is out of range (1-4)"],
    9: ["SB score 'abc' is not a number"],
    10: ["unknown teacher 'Zoe Unknown'"],
    11: ["cannot read the date 'next Tuesday'"],
    13: ["date '2099-01-05' is in the future"],
}


@pytest.fixture
def world(session):
    users = people(session)
    import_file(session, users["admin"], "roster.csv", "roster")
    return users


def _count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def _plan(session, admin, name, kind="observations", **kw):
    return importer.plan_file(session=session, user=admin, source=DATA / name, filename=name, kind=kind, **kw)


def test_the_roster_creates_schools_and_teachers_and_links_coaches(session):
    users = people(session)
    result = import_file(session, users["admin"], "roster.csv", "roster")
    assert result.created == {"schools": 2, "teachers": 4}
    teachers = {t.name: t for t in session.exec(select(Teacher)).all()}
    assert sorted(teachers) == ["Ana Lopez", "Ben Okafor", "Carla Diaz", "Dev Patel"]
    assert teachers["Ben Okafor"].coach_id == users["mrivera"].id  # matched by display name
    assert teachers["Carla Diaz"].coach_id == users["jchen"].id
    assert teachers["Dev Patel"].coach_id is None
    assert teachers["Ana Lopez"].grade_band == "K-2" and teachers["Ben Okafor"].subject == "Math"
    lincoln = session.exec(select(School).where(School.name == "Lincoln Elementary")).one()
    assert (users["mrivera"].id, lincoln.id) in set(
        session.exec(select(UserSchool.user_id, UserSchool.school_id)).all()
    )


def test_importing_the_roster_twice_creates_nothing_the_second_time(session):
    users = people(session)
    import_file(session, users["admin"], "roster.csv", "roster")
    plan = _plan(session, users["admin"], "roster.csv", "roster")
    assert plan.summary["exists"] == 4 and plan.summary["create"] == 0
    again = importer.apply_import(session=session, user=users["admin"], plan=plan)
    assert again.total_created == 0 and again.skipped == 4
    assert _count(session, Teacher) == 4 and _count(session, School) == 2
    assert _count(session, ImportBatch) == 1


def test_a_roster_row_naming_an_unknown_coach_is_a_problem(session):
    users = people(session)
    data = b"Name,School,Grade band,Coach\nEva Stone,Lincoln Elementary,3-5,nobody\nFay Wu,,3-5,\n"
    plan = importer.plan_file(
        session=session, user=users["admin"], source=data, filename="r.csv", kind="roster"
    )
    assert plan.problems == [(2, "unknown coach 'nobody'"), (3, "school is blank")]


def test_the_messy_dry_run_reports_exactly_the_bad_rows(session, world):
    plan = _plan(session, world["admin"], "observations_messy.csv")
    by_row: dict[int, list[str]] = {}
    for row, problem in plan.problems:
        by_row.setdefault(row, []).append(problem)
    assert by_row == MESSY_PROBLEMS
    assert [r.row for r in plan.rows if r.action == "create"] == [2, 3, 5, 6, 12]
    assert 4 not in [r.row for r in plan.rows]  # the blank row is dropped, numbering kept
    warned = {r.row: r.warnings for r in plan.rows if r.warnings}
    assert warned == {
        3: ["9/10 could be day/month; read as month/day (US): Sep 10"],
        12: ["10/08 could be day/month; read as month/day (US): Oct 8"],
    }
    assert plan.mapping.unknown == ["Period"]
    table = plan.table()
    assert list(table.columns) == ["row", "action", "what", "problems", "warnings"]
    assert table.set_index("row").loc[8, "problems"] == "CR score '5' is out of range (1-4)"


def test_applying_a_plan_with_problems_is_refused_and_writes_nothing(session, world):
    before = (_count(session, Observation), _count(session, DomainScore), _count(session, AuditLog))
    plan = _plan(session, world["admin"], "observations_messy.csv")
    with pytest.raises(ValidationError, match="6 problems; nothing was imported"):
        importer.apply_import(session=session, user=world["admin"], plan=plan)
    after = (_count(session, Observation), _count(session, DomainScore), _count(session, AuditLog))
    assert after == before
    assert _count(session, ImportBatch) == 1  # the roster's only


def test_a_clean_import_creates_observations_with_frozen_dimensions(session, world):
    result = import_file(session, world["admin"], "observations.csv", "observations")
    assert result.created == {"observations": 6, "scores": 38, "action_steps": 3}
    ana = session.exec(select(Teacher).where(Teacher.name == "Ana Lopez")).one()
    first = session.exec(
        select(Observation).where(Observation.teacher_id == ana.id).order_by(Observation.observed_at)
    ).first()
    assert first.observer_id == world["mrivera"].id
    assert first.school_id == ana.school_id and first.grade_band == "K-2"
    assert first.client_token.startswith("import:")
    assert first.notes == "Entry routine took four minutes."
    scores = session.exec(select(DomainScore).where(DomainScore.observation_id == first.id)).all()
    assert {s.domain_code: s.score for s in scores} == {
        "CR": 2,
        "SB": 2,
        "EN": 3,
        "CFU": 2,
        "RIG": 2,
        "LD": 3,
    }
    for s in scores:
        assert (s.teacher_id, s.school_id, s.grade_band, s.observer_id, s.block_id) == (
            ana.id,
            ana.school_id,
            "K-2",
            first.observer_id,
            first.block_id,
        )
        assert s.rubric_version_id == first.rubric_version_id and s.month == "2025-09"
    # "N/A" is a "not observed" mark, never a number
    carla = session.exec(select(Teacher).where(Teacher.name == "Carla Diaz")).one()
    marks = session.exec(
        select(DomainScore.score).where(DomainScore.teacher_id == carla.id, DomainScore.domain_code == "CFU")
    ).all()
    assert None in marks
    steps = {s.title: s for s in session.exec(select(ActionStep)).all()}
    assert steps["Short what-to-do directions"].library_step_id is not None  # a library move
    custom = steps["Start the table group within two minutes"]
    assert custom.library_step_id is None and custom.custom_text == custom.title and custom.state == "open"
    assert str(custom.check_back_on) == "2025-09-18"
    events = session.exec(select(StepEvent.to_state, StepEvent.cause)).all()
    assert events == [("open", "imported")] * 3
    audited = session.exec(
        select(func.count()).select_from(AuditLog).where(AuditLog.entity == "observation")
    ).one()
    assert audited == 6


def test_importing_the_same_file_twice_creates_nothing_the_second_time(session, world):
    import_file(session, world["admin"], "observations.csv", "observations")
    counts = (_count(session, Observation), _count(session, DomainScore), _count(session, ActionStep))
    plan = _plan(session, world["admin"], "observations.csv")
    assert plan.ok and plan.summary["exists"] == 6 and plan.summary["create"] == 0
    second = importer.apply_import(session=session, user=world["admin"], plan=plan)
    assert second.total_created == 0 and second.skipped == 6
    assert (_count(session, Observation), _count(session, DomainScore), _count(session, ActionStep)) == counts


def test_a_plan_made_before_an_import_creates_nothing_when_applied_after_it(session, world):
    stale = _plan(session, world["admin"], "observations.csv")
    import_file(session, world["admin"], "observations.csv", "observations")
    again = importer.apply_import(session=session, user=world["admin"], plan=stale)
    assert again.total_created == 0 and _count(session, Observation) == 6


def test_the_same_observation_in_another_date_format_is_not_imported_twice(session, world):
    import_file(session, world["admin"], "observations.csv", "observations")
    data = b"Date,Teacher,Observer,Block,CR\n9/3/2025,Ana Lopez,Maria Rivera,WG,2\n"
    plan = importer.plan_file(
        session=session, user=world["admin"], source=data, filename="x.csv", kind="observations"
    )
    assert plan.ok and [r.action for r in plan.rows] == ["exists"]


def test_an_xlsx_file_imports_with_excel_dates_and_numbers(session, world):
    plan = _plan(session, world["admin"], "observations.xlsx")
    assert plan.ok, plan.problems
    assert [r.row for r in plan.rows] == [2, 3, 5]
    result = importer.apply_import(session=session, user=world["admin"], plan=plan)
    assert result.created["observations"] == 3
    when = session.exec(select(Observation.observed_at).order_by(Observation.observed_at)).first()
    assert when.astimezone(importer.school_tz()).replace(tzinfo=None) == datetime(2025, 9, 3, 9, 30)
    carla = session.exec(select(Teacher).where(Teacher.name == "Carla Diaz")).one()
    assert sorted(
        session.exec(select(DomainScore.score).where(DomainScore.teacher_id == carla.id)).all()
    ) == [1, 2, 2]


def test_header_matching_forgives_case_spacing_and_ampersands_and_reports_unknown_columns(session, world):
    headers = [
        "  DATE ",
        "teacher",
        "Observed By",
        "culture and routines",
        "SAFETY&BEHAVIOR",
        "cfu",
        "Shoe size",
    ]
    mapping = importer.propose_mapping(headers, session, "observations")
    assert mapping.domain_columns == {"culture and routines": "CR", "SAFETY&BEHAVIOR": "SB", "cfu": "CFU"}
    assert mapping.roles == {"  DATE ": "date", "teacher": "teacher", "Observed By": "observer"}
    assert mapping.unknown == ["Shoe size"]


def test_a_user_mapping_reads_an_unknown_column_as_a_domain(session, world):
    data = b"Date,Teacher,Observer,Block,Routines score\n2025-09-03,Ana Lopez,mrivera,WG,3\n"
    plan = importer.plan_file(
        session=session, user=world["admin"], source=data, filename="x.csv", kind="observations"
    )
    assert plan.problems == [(1, "no column matches a rubric domain")]
    plan = importer.plan_file(
        session=session,
        user=world["admin"],
        source=data,
        filename="x.csv",
        kind="observations",
        overrides=importer.parse_overrides(["Routines score=cr"]),
    )
    assert plan.ok and plan.rows[0].payload["scores"]["CR"][0] == 3
    with pytest.raises(ValidationError, match="cannot be read as 'XYZ'"):
        importer.override_mapping(
            plan.mapping, {"Routines score": "XYZ"}, session=session, kind="observations"
        )


def test_a_missing_required_column_is_a_file_problem(session, world):
    data = b"Teacher,Block,CR\nAna Lopez,WG,3\n"
    plan = importer.plan_file(
        session=session, user=world["admin"], source=data, filename="x.csv", kind="observations"
    )
    assert plan.problems == [
        (1, "no column is read as 'date' (map one of the headers to it)"),
        (1, "no column is read as 'observer' (map one of the headers to it)"),
    ]


def test_a_semicolon_latin1_csv_is_read(session, world):
    data = "Date;Teacher;Observer;Block;CR;Notes\n2025-09-03;Ana Lopez;mrivera;WG;3;Élan\n".encode("latin-1")
    df = importer.read_table(data, "export.csv")
    assert list(df.columns) == ["Date", "Teacher", "Observer", "Block", "CR", "Notes"]
    assert df.loc[2, "Notes"] == "Élan"


@pytest.mark.parametrize(
    ("text", "expected", "warned"),
    [
        ("2025-09-03", datetime(2025, 9, 3, 12), False),
        ("2025-09-03 14:30", datetime(2025, 9, 3, 14, 30), False),
        ("2025-09-03T14:30:05", datetime(2025, 9, 3, 14, 30, 5), False),
        ("9/3/2025", datetime(2025, 9, 3, 12), True),
        ("03/09/2025", datetime(2025, 3, 9, 12), True),
        ("25/09/2025", datetime(2025, 9, 25, 12), False),
        ("9/3/25 1:05 PM", datetime(2025, 9, 3, 13, 5), True),
        ("12/12/2025", datetime(2025, 12, 12, 12), False),
        ("Sep 3 2025", datetime(2025, 9, 3, 12), False),
        ("September 3, 2025 8:15 am", datetime(2025, 9, 3, 8, 15), False),
        ("3 Sept 2025", datetime(2025, 9, 3, 12), False),
    ],
)
def test_dates_are_read_in_the_formats_spreadsheets_use(text, expected, warned):
    when, note = importer.parse_when(text)
    assert when == expected
    assert bool(note) is warned


@pytest.mark.parametrize(
    "text", ["next Tuesday", "2025-02-30", "13/13/2025", "Smarch 3 2025", "9/3/2025 25:00"]
)
def test_unreadable_dates_are_reported(text):
    when, note = importer.parse_when(text)
    assert when is None and "cannot read the date" in note


def test_only_an_admin_may_import(session, world):
    df = importer.read_table(DATA / "observations.csv")
    with pytest.raises(PermissionDenied):
        importer.plan_import(session=session, user=world["mrivera"], df=df, kind="observations")


def test_a_blank_required_cell_and_an_unknown_block_are_problems(session, world):
    data = (
        b"Date,Teacher,Observer,Block,CR\n2025-09-03,Ana Lopez,,WG,3\n2025-09-04,Ana Lopez,jchen,Recess,3\n"
    )
    plan = importer.plan_file(
        session=session, user=world["admin"], source=data, filename="x.csv", kind="observations"
    )
    assert plan.problems == [(2, "observer is blank"), (3, "unknown block 'Recess'")]


def test_an_import_failing_half_way_leaves_nothing_behind(session, world):
    plan = _plan(session, world["admin"], "observations.csv")
    # Another process deletes a teacher between the dry run and the apply: the insert fails.
    plan.rows[-1].payload["teacher_id"] = 999_999
    with pytest.raises(KeyError):
        importer.apply_import(session=session, user=world["admin"], plan=plan)
    assert _count(session, Observation) == 0 and _count(session, DomainScore) == 0


def test_a_group_by_of_imported_scores_matches_the_file(session, world):
    import_file(session, world["admin"], "observations.csv", "observations")
    rows = session.exec(
        text(
            "SELECT domain_code, AVG(score * 1.0) FROM domain_score GROUP BY domain_code ORDER BY domain_code"
        )
    ).all()
    df = pd.read_csv(io.StringIO((DATA / "observations.csv").read_text()))
    assert round(float(dict(rows)["CR"]), 6) == round(df["Culture & Routines"].mean(), 6)
    assert round(float(dict(rows)["RIG"]), 6) == round(df["Rigor"].mean(), 6)


# --- the command line (a real subprocess on SQLite) ----------------------------------------------


def _cli(url: str, *args: str):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "coaching", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_dry_run_prints_the_bad_rows_and_writes_nothing(sqlite_url, sqlite_session):
    users = people(sqlite_session)
    import_file(sqlite_session, users["admin"], "roster.csv", "roster")
    out = _cli(
        sqlite_url, "import", str(DATA / "observations_messy.csv"), "--kind", "observations", "--dry-run"
    )
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    for row, problems in MESSY_PROBLEMS.items():
        assert any(line.split()[:2] == [str(row), "error"] and problems[0] in line for line in lines), row
    assert "Note: column 'Period' matches nothing and is ignored" in out.stdout
    assert "Nothing was imported" in out.stdout
    assert _count(sqlite_session, Observation) == 0


def test_the_cli_imports_once_and_then_finds_everything_present(sqlite_url, sqlite_session):
    users = people(sqlite_session)
    import_file(sqlite_session, users["admin"], "roster.csv", "roster")
    first = _cli(sqlite_url, "import", str(DATA / "observations.xlsx"), "--kind", "observations")
    assert first.returncode == 0, first.stderr
    assert "Created 3 observations, 8 scores." in first.stdout
    second = _cli(sqlite_url, "import", str(DATA / "observations.xlsx"), "--kind", "observations")
    assert second.returncode == 0 and "Nothing new to create" in second.stdout
    sqlite_session.expire_all()
    assert _count(sqlite_session, Observation) == 3


def test_the_cli_map_option_and_its_bad_input(sqlite_url, sqlite_session, tmp_path):
    users = people(sqlite_session)
    import_file(sqlite_session, users["admin"], "roster.csv", "roster")
    f = tmp_path / "form.csv"
    f.write_text("Date,Teacher,Observer,Block,Routines score\n2025-09-03,Ana Lopez,mrivera,WG,3\n")
    ok = _cli(sqlite_url, "import", str(f), "--kind", "observations", "--map", "Routines score=CR")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Routines score -> CR" in ok.stdout
    bad = _cli(sqlite_url, "import", str(f), "--kind", "observations", "--map", "Routines score")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --map expects HEADER=DOMAINCODE")


def test_a_school_column_tells_two_teachers_with_the_same_name_apart(session, world):
    lincoln = session.exec(select(School).where(School.name == "Lincoln Elementary")).one()
    roosevelt = session.exec(select(School).where(School.name == "Roosevelt Elementary")).one()
    session.add(Teacher(name="Ana Lopez", school_id=roosevelt.id, grade_band="3-5"))
    session.commit()
    data = b"Date,Teacher,Observer,Block,CR\n2025-09-03,Ana Lopez,mrivera,WG,3\n"
    plan = importer.plan_file(
        session=session, user=world["admin"], source=data, filename="x.csv", kind="observations"
    )
    assert plan.problems == [(2, "several teachers are named 'Ana Lopez'; add a school column")]
    data = b"Date,Teacher,School,Observer,Block,CR\n2025-09-03,Ana Lopez,lincoln elementary,mrivera,WG,3\n"
    plan = importer.plan_file(
        session=session, user=world["admin"], source=data, filename="x.csv", kind="observations"
    )
    assert plan.ok
    importer.apply_import(session=session, user=world["admin"], plan=plan)
    assert session.exec(select(Observation.school_id)).one() == lincoln.id


def test_the_delimiter_comes_from_the_header_not_from_semicolons_in_notes():
    data = b'Date,Teacher,Notes\n2025-09-03,Ana Lopez,"a; b; c; d"\n2025-09-04,Ben Okafor,"e; f; g"\n'
    df = importer.read_table(data, "notes.csv")
    assert list(df.columns) == ["Date", "Teacher", "Notes"] and df.loc[3, "Notes"] == "e; f; g"
    tabbed = importer.read_table(b"Date\tTeacher\n2025-09-03\tAna Lopez\n", "export.txt")
    assert tabbed.loc[2, "Teacher"] == "Ana Lopez"
