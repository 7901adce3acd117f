"""The Import & export page (AppTest) and the zip export/restore behind it (both DBs, and across)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlmodel import Session, select

from coaching import archive
from coaching.errors import CoachloopError, PermissionDenied, ValidationError
from coaching.metrics import program_metrics
from db.engine import build_engine, get_engine
from db.models import AuditLog, DomainScore, Observation, Teacher, User
from tests._import_helpers import DATA, import_file, people

APP = str(Path(__file__).resolve().parents[1] / "app.py")
HEATMAP_SQL = (
    "SELECT school_id, domain_code, AVG(score * 1.0), COUNT(score) FROM domain_score "
    "GROUP BY school_id, domain_code ORDER BY school_id, domain_code"
)


def _loaded(session) -> dict[str, User]:
    users = people(session)
    import_file(session, users["admin"], "roster.csv", "roster")
    import_file(session, users["admin"], "observations.csv", "observations")
    return users


def _heatmap(session):
    return [(a, b, round(float(c), 9), d) for a, b, c, d in session.exec(text(HEATMAP_SQL)).all()]


# --- the page ---------------------------------------------------------------------------------


@pytest.fixture
def page(sqlite_url):
    from streamlit.testing.v1 import AppTest

    with Session(get_engine(), expire_on_commit=False) as s:
        users = people(s)
        import_file(s, users["admin"], "roster.csv", "roster")
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["user_id"] = users["admin"].id
    at.run()
    at.switch_page("app_pages/data.py").run()
    assert not at.exception
    return at


def _upload(at, key: str, name: str, mime: str = "text/csv", data: bytes | None = None):
    at.file_uploader(key=key).set_value(
        (name, data if data is not None else (DATA / name).read_bytes(), mime)
    )
    return at.run()


def _count(model) -> int:
    with Session(get_engine()) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_the_page_dry_run_shows_every_problem_and_offers_no_import(page):
    at = _upload(page, "imp_file", "observations_messy.csv")
    assert not at.exception
    assert at.error[0].value.startswith("6 problems")
    table = at.dataframe[0].value
    bad = table[table["problems"] != ""]
    assert list(bad["row"]) == [7, 8, 9, 10, 11, 13]
    assert "unknown teacher 'Zoe Unknown'" in set(bad["problems"])
    assert not [b for b in at.button if b.label.startswith("Import")]
    assert _count(Observation) == 0


def test_the_page_imports_a_clean_file_once(page):
    at = _upload(page, "imp_file", "observations.csv")
    assert not at.error
    button = next(b for b in at.button if b.label == "Import 6 rows")
    at = button.click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Created 6 observations")
    assert _count(Observation) == 6
    at = at.run()  # same file still uploaded: everything is already here now
    assert "already here" in at.info[0].value
    assert _count(Observation) == 6


def test_after_an_import_the_page_shows_the_result_and_a_fresh_plan_not_the_one_applied(page):
    data = b"Teacher Name,School,Grade\nNew Teacher,Lincoln Elementary,K-2\n"
    page.radio(key="imp_kind").set_value("roster").run()
    at = _upload(page, "imp_file", "one_teacher.csv", data=data)
    assert [m.value for m in at.metric] == ["1", "1", "0", "0"]
    at = next(b for b in at.button if b.label == "Import 1 row").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Created 1 teachers."]
    assert [m.value for m in at.metric] == ["1", "0", "1", "0"]  # planned again: now already here
    assert not [b for b in at.button if b.label.startswith("Import")]
    assert "already here" in at.info[0].value
    assert _count(Teacher) == 5


def test_a_roster_uploaded_as_observations_says_so_and_offers_the_roster_type(page):
    assert page.radio(key="imp_kind").value == "observations"  # the default
    at = _upload(page, "imp_file", "roster.csv")
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("This file does not read as an observations file: no column is read as 'date'")
    assert "Its columns fit a roster: choose 'roster' above." in error
    assert not at.metric and not at.dataframe  # no misleading "Rows 0"
    at = next(b for b in at.button if b.label == "Read it as a roster").click().run()
    assert not at.exception and not at.error
    assert at.radio(key="imp_kind").value == "roster"
    assert [m.value for m in at.metric] == ["4", "0", "4", "0"]


def test_a_file_that_fits_no_type_gets_no_suggestion(page):
    at = _upload(page, "imp_file", "odd.csv", data=b"Colour,Size\nred,4\n")
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("This file does not read as an observations file") and "fit" not in error
    assert not [b for b in at.button if b.label.startswith("Read it as")]


def test_the_page_mapping_lets_an_unknown_column_be_read_as_a_domain(page):
    data = b"When,Teacher,Observer,Block,Routines score\n2025-09-03,Ana Lopez,mrivera,WG,3\n"
    at = _upload(page, "imp_file", "form.csv", data=data)
    assert at.error  # 'Routines score' is not understood, and 'When' is
    at.selectbox(key="map_observations_Routines score").set_value("CR").run()
    assert not at.exception and not at.error
    at = next(b for b in at.button if b.label == "Import 1 row").click().run()
    with Session(get_engine()) as s:
        assert s.exec(select(DomainScore.domain_code, DomainScore.score)).all() == [("CR", 3)]


def test_the_page_offers_the_export_zip_for_download(page):
    at = page.button(key="exp_go").click().run()
    assert not at.exception
    assert len(at.get("download_button")) == 1
    blob = at.session_state["export_zip"]
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = set(zf.namelist())
        assert {"users.csv", "teachers.csv", "observations.csv", "data_dictionary.md"} <= names
        assert "password_hash" not in zf.read("users.csv").decode().splitlines()[0]
        everything = b"".join(zf.read(n) for n in names)
    assert b"$2b$" not in everything  # no bcrypt hash anywhere, in any file


def test_the_page_offers_no_way_to_download_password_hashes(page):
    labels = [c.label.lower() for c in page.checkbox]
    assert not any("password" in label or "hash" in label or "credential" in label for label in labels)


def test_the_page_refuses_to_restore_over_existing_data_without_replace(page):
    with Session(get_engine(), expire_on_commit=False) as s:
        admin = s.exec(select(User).where(User.username == "admin1")).one()
        blob = archive.export_zip(session=s, user=admin, with_credentials=True)
    at = _upload(page, "restore_file", "backup.zip", mime="application/zip", data=blob)
    at = at.button(key="restore_go").click().run()
    assert not at.exception
    assert "restore only into an empty database" in at.error[0].value


# --- the zip, on both databases ---------------------------------------------------------------


def test_a_zip_restore_replacing_the_database_gives_back_the_same_data(session):
    users = _loaded(session)
    before = _heatmap(session)
    teachers = sorted(session.exec(select(Teacher.name)).all())
    blob = archive.export_zip(session=session, user=users["admin"], with_credentials=True)
    loaded = archive.restore_zip(session=session, user=users["admin"], data=blob, replace=True)
    assert loaded["observations.csv"] == 6 and loaded["scores.csv"] == 38
    session.expire_all()
    assert _heatmap(session) == before
    assert sorted(session.exec(select(Teacher.name)).all()) == teachers
    actions = session.exec(select(AuditLog.action).where(AuditLog.entity == "database")).all()
    assert actions[-1] == "restore"


def test_a_replacing_restore_needs_an_admin_password_in_the_zip(session):
    users = _loaded(session)
    blob = archive.export_zip(session=session, user=users["admin"])
    with pytest.raises(ValidationError, match="no admin password hash"):
        archive.restore_zip(session=session, user=users["admin"], data=blob, replace=True)
    assert session.exec(select(func.count()).select_from(Observation)).one() == 6


def test_a_broken_restore_leaves_the_database_as_it_was(session):
    users = _loaded(session)
    blob = archive.export_zip(session=session, user=users["admin"], with_credentials=True)
    src = zipfile.ZipFile(io.BytesIO(blob))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in src.namelist():
            body = src.read(name)
            if name == "scores.csv":
                body = body.replace(b",2025-", b",not-a-date-", 1)
            zf.writestr(f"backup/{name}", body)  # also: members inside a folder are accepted
    with pytest.raises(CoachloopError):
        archive.restore_zip(session=session, user=users["admin"], data=out.getvalue(), replace=True)
    session.expire_all()
    assert session.exec(select(func.count()).select_from(Observation)).one() == 6
    assert session.exec(select(func.count()).select_from(User)).one() == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not a zip archive"),
        (b"PK\x05\x06" + b"\x00" * 18, "not a Coachloop export"),
    ],
)
def test_a_zip_that_is_not_an_export_is_refused(session, data, message):
    users = people(session)
    with pytest.raises(ValidationError, match=message):
        archive.restore_zip(session=session, user=users["admin"], data=data)


def test_only_an_admin_exports_or_restores(session):
    users = people(session)
    with pytest.raises(PermissionDenied):
        archive.export_zip(session=session, user=users["mrivera"])
    with pytest.raises(PermissionDenied):
        archive.restore_zip(session=session, user=users["leader"], data=b"")


def test_a_zip_from_sqlite_restores_into_postgresql_with_the_same_metrics(sqlite_url, postgres_url):
    lite, pg = build_engine(sqlite_url), build_engine(postgres_url)
    try:
        with Session(lite, expire_on_commit=False) as s:
            users = _loaded(s)
            blob = archive.export_zip(session=s, user=users["admin"], with_credentials=True)
            expected, heat = program_metrics(session=s), _heatmap(s)
        with Session(pg, expire_on_commit=False) as s:
            archive.restore_zip(session=s, user=users["admin"], data=blob)
            assert program_metrics(session=s) == expected
            assert _heatmap(s) == heat
            back = archive.export_zip(session=s, user=users["admin"], with_credentials=True)
        with Session(lite, expire_on_commit=False) as s:
            archive.restore_zip(session=s, user=users["admin"], data=back, replace=True)
            assert program_metrics(session=s) == expected
    finally:
        lite.dispose()
        pg.dispose()


def test_the_page_reads_a_roster_already_imported_as_nothing_to_do(page):
    page.radio(key="imp_kind").set_value("roster").run()
    at = _upload(page, "imp_file", "roster.csv")
    assert not at.exception and not at.error
    assert [m.value for m in at.metric] == ["4", "0", "4", "0"]
    assert "already here" in at.info[0].value
