"""A deterministic district-scale dataset, bulk loaded into SQLite or PostgreSQL.

District scale: 40 schools, 4,000 teachers, three school years (2023-24 to 2025-26), ~400,000
observations and ~2.6 million domain scores, with action steps and revisits. Building it through
the audited save path would take hours, so the tables are generated with numpy and bulk loaded:
SQLite with executemany in large transactions and the big tables' indexes created after the load;
PostgreSQL with COPY. The SQLite file and the CSV files for COPY are cached under `.bench-cache/`
(git-ignored) and rebuilt only when GENERATOR_VERSION or the scale changes.

    .venv/bin/python -m benchmarks.district [--pilot]      # build (or reuse) the SQLite file
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlmodel import Session, select

from benchmarks import CACHE, ROOT
from db.engine import build_engine
from db.migrate import upgrade
from db.models import Block, Domain, RubricVersion

log = logging.getLogger(__name__)
GENERATOR_VERSION = 1
TZ = "America/Los_Angeles"
BIG_TABLES = ("observation", "domain_score", "action_step", "revisit")
GRADE_BANDS = ("K-2", "3-5", "6-8")
# Per-domain offsets from a teacher's level, so the domains differ the way DOMAIN.md's pilot does.
DOMAIN_OFFSETS = {
    "CR": -0.1,
    "SB": -0.6,
    "EN": 0.1,
    "CFU": 0.0,
    "RIG": -0.2,
    "SG": 0.35,
    "RI": 0.55,
    "LD": 0.15,
}


@dataclass(frozen=True)
class Scale:
    name: str
    schools: int
    teachers_per_school: int
    coaches_per_school: int
    first_year: int  # school years first_year..first_year+years-1 (Aug to Jun)
    years: int
    obs_per_teacher_year: float
    seed: int = 20251123


DISTRICT = Scale(
    "district",
    schools=40,
    teachers_per_school=100,
    coaches_per_school=3,
    first_year=2023,
    years=3,
    obs_per_teacher_year=33.5,
)
PILOT = Scale(
    "pilot",
    schools=4,
    teachers_per_school=39,
    coaches_per_school=3,
    first_year=2025,
    years=1,
    obs_per_teacher_year=11.5,
)


def _stamp(scale: Scale, schema: bool = False) -> str:
    """Cache key: the scale and generator version, plus (for database files) the migrations."""
    stamp = f"{scale.name}-v{GENERATOR_VERSION}"
    if schema:
        h = hashlib.sha256()
        for f in sorted((ROOT / "db" / "migrations" / "versions").glob("*.py")):
            h.update(f.read_bytes())
        stamp += f"-{h.hexdigest()[:10]}"
    return stamp


def _utc_strings(ts: pd.DatetimeIndex) -> np.ndarray:
    """UTC instants in the text form SQLAlchemy's DateTime uses on SQLite (naive UTC, microseconds)."""
    return np.char.replace(
        np.datetime_as_string(ts.tz_convert("UTC").tz_localize(None).values, unit="us"), "T", " "
    )


def _school_days(year: int) -> np.ndarray:
    days = pd.date_range(f"{year}-08-18", f"{year + 1}-06-12", freq="B")
    winter = (days >= f"{year}-12-20") & (days <= f"{year + 1}-01-03")
    return days[~winter].values


def generate(scale: Scale, reference: dict) -> dict[str, pd.DataFrame]:
    """Every table of the dataset as DataFrames with explicit ids (deterministic for a scale)."""
    rng = np.random.default_rng(scale.seed)
    n_sch = scale.schools
    created = pd.Timestamp(f"{scale.first_year}-07-01", tz="UTC")
    schools = pd.DataFrame(
        {
            "id": np.arange(1, n_sch + 1),
            "code": [f"D{i:03d}" for i in range(1, n_sch + 1)],
            "name": [f"District School {i:02d}" for i in range(1, n_sch + 1)],
            "enrolment": rng.integers(350, 650, n_sch),
        }
    )
    # Users: one admin, one leader per school, coaches_per_school coaches per school.
    n_coach = n_sch * scale.coaches_per_school
    roles = ["admin"] + ["leader"] * n_sch + ["coach"] * n_coach
    uid = np.arange(1, len(roles) + 1)
    names = (
        ["District Admin"]
        + [f"Leader {i:02d}" for i in range(1, n_sch + 1)]
        + [f"Coach {i:03d}" for i in range(1, n_coach + 1)]
    )
    users = pd.DataFrame(
        {
            "id": uid,
            "username": [f"bench_{r}_{i}" for r, i in zip(roles, uid, strict=True)],
            "display_name": names,
            "email": "",
            "role": roles,
            "password_hash": None,
            "failed_logins": 0,
            "locked": False,
            "active": True,
            "must_change_password": False,
            "is_demo": False,
            "created_at": created,
        }
    )
    leader_ids = uid[1 : 1 + n_sch]
    coach_ids = uid[1 + n_sch :].reshape(n_sch, scale.coaches_per_school)
    user_school = pd.DataFrame(
        {
            "user_id": np.concatenate([leader_ids, coach_ids.ravel()]),
            "school_id": np.concatenate(
                [schools.id.values, np.repeat(schools.id.values, scale.coaches_per_school)]
            ),
        }
    )
    n_t = n_sch * scale.teachers_per_school
    t_school = np.repeat(schools.id.values, scale.teachers_per_school)
    t_coach_slot = rng.integers(0, scale.coaches_per_school, n_t)
    t_coach = coach_ids[t_school - 1, t_coach_slot]
    teachers = pd.DataFrame(
        {
            "id": np.arange(1, n_t + 1),
            "name": [f"Teacher {i:04d}" for i in range(1, n_t + 1)],
            "email": "",
            "school_id": t_school,
            "grade_band": np.array(GRADE_BANDS)[rng.integers(0, len(GRADE_BANDS), n_t)],
            "subject": "ELA",
            "coach_id": t_coach,
            "user_id": None,
            "active": True,
            "created_at": created,
        }
    )
    level = rng.normal(2.35, 0.45, n_t)  # each teacher's starting level

    # Observations: per teacher and year, more visits where the need is greater.
    parts = []
    for y in range(scale.years):
        days = _school_days(scale.first_year + y)
        lam = np.clip(scale.obs_per_teacher_year + 9.0 * (2.35 - level), 4, None)
        counts = rng.poisson(lam)
        t_idx = np.repeat(np.arange(n_t), counts)
        day = days[rng.integers(0, len(days), len(t_idx))]
        minute = rng.integers(7 * 60 + 45, 15 * 60, len(t_idx))
        parts.append((t_idx, day + minute.astype("timedelta64[m]"), np.full(len(t_idx), y)))
    t_idx = np.concatenate([p[0] for p in parts])
    local = np.concatenate([p[1] for p in parts])
    year_no = np.concatenate([p[2] for p in parts])
    order = np.lexsort((local, t_idx))
    t_idx, local, year_no = t_idx[order], local[order], year_no[order]
    n_obs = len(t_idx)
    obs_id = np.arange(1, n_obs + 1)
    local_ts = pd.DatetimeIndex(local).tz_localize(TZ, nonexistent="shift_forward", ambiguous=False)
    observed = _utc_strings(local_ts)
    month = pd.DatetimeIndex(local).strftime("%Y-%m").values
    own_coach = t_coach[t_idx]
    other = coach_ids[t_school[t_idx] - 1, rng.integers(0, scale.coaches_per_school, n_obs)]
    observer = np.where(rng.random(n_obs) < 0.85, own_coach, other)
    block_ids = np.array(reference["block_ids"])
    block = block_ids[rng.integers(0, len(block_ids), n_obs)]
    debrief_h = rng.gamma(2.0, 14.0, n_obs)
    debriefed = rng.random(n_obs) < 0.93
    debriefed_at = np.where(debriefed, _utc_strings(local_ts + pd.to_timedelta(debrief_h, unit="h")), None)
    observations = pd.DataFrame(
        {
            "id": obs_id,
            "teacher_id": t_idx + 1,
            "observer_id": observer,
            "observed_at": observed,
            "block_id": block,
            "rubric_version_id": reference["rubric_version_id"],
            "duration_min": 15,
            "notes": "",
            "notes_private": False,
            "school_id": t_school[t_idx],
            "grade_band": teachers.grade_band.values[t_idx],
            "debriefed_at": debriefed_at,
            "debrief_notes": "",
            "acknowledged_at": None,
            "reflection": "",
            "client_token": None,
            "created_at": observed,
            "updated_at": observed,
        }
    )

    # Domain scores: 5-8 of the 8 domains per observation, a few marked "not observed".
    codes = np.array(reference["domain_codes"])
    n_dom = len(codes)
    k = rng.integers(5, n_dom + 1, n_obs)
    ranks = rng.random((n_obs, n_dom)).argsort(axis=1).argsort(axis=1)
    chosen = ranks < k[:, None]
    o_rows, d_cols = np.nonzero(chosen)
    start_day = np.array([np.datetime64(f"{scale.first_year + y}-08-18") for y in year_no])
    frac = ((local - start_day) / np.timedelta64(300, "D")).astype(float).clip(0, 1)
    mean = level[t_idx] + 0.45 * frac + 0.12 * year_no
    offsets = np.array([DOMAIN_OFFSETS.get(c, 0.0) for c in codes])
    raw = mean[o_rows] + offsets[d_cols] + rng.normal(0, 0.7, len(o_rows))
    score = np.clip(np.rint(raw), 1, 4).astype(int).astype(object)
    score[rng.random(len(o_rows)) < 0.04] = None
    scores = pd.DataFrame(
        {
            "id": np.arange(1, len(o_rows) + 1),
            "observation_id": obs_id[o_rows],
            "domain_id": np.array(reference["domain_ids"])[d_cols],
            "domain_code": codes[d_cols],
            "score": score,
            "evidence": "",
            "teacher_id": t_idx[o_rows] + 1,
            "school_id": t_school[t_idx][o_rows],
            "grade_band": observations.grade_band.values[o_rows],
            "observer_id": observer[o_rows],
            "block_id": block[o_rows],
            "rubric_version_id": reference["rubric_version_id"],
            "observed_at": observed[o_rows],
            "month": month[o_rows],
        }
    )

    # Action steps: most observations assign one; it is revisited at the teacher's next visit.
    assigns = rng.random(n_obs) < 0.8
    s_obs = np.nonzero(assigns)[0]
    has_next = np.zeros(n_obs, dtype=bool)
    has_next[:-1] = t_idx[1:] == t_idx[:-1]
    ratings = np.array(["not_yet", "partial", "implemented"])[rng.choice(3, len(s_obs), p=[0.2, 0.2, 0.6])]
    revisited = has_next[s_obs]
    state = np.where(revisited & (ratings == "implemented"), "mastered", "open")
    check_back = (local[s_obs].astype("datetime64[D]") + np.timedelta64(14, "D")).astype(str)
    steps = pd.DataFrame(
        {
            "id": np.arange(1, len(s_obs) + 1),
            "teacher_id": t_idx[s_obs] + 1,
            "observation_id": obs_id[s_obs],
            "library_step_id": None,
            "domain_code": codes[rng.integers(0, n_dom, len(s_obs))],
            "title": "Benchmark step",
            "custom_text": "",
            "assigned_by": observer[s_obs],
            "assigned_at": observed[s_obs],
            "check_back_on": check_back,
            "state": state,
            "mastered_at": np.where(state == "mastered", observed[np.minimum(s_obs + 1, n_obs - 1)], None),
            "sustained_at": None,
            "dropped_at": None,
            "drop_reason": "",
            "updated_at": observed[s_obs],
        }
    )
    r_steps = np.nonzero(revisited)[0]
    revisits = pd.DataFrame(
        {
            "id": np.arange(1, len(r_steps) + 1),
            "step_id": r_steps + 1,
            "observation_id": obs_id[s_obs[r_steps] + 1],
            "rating": ratings[r_steps],
            "note": "",
            "revisited_at": observed[s_obs[r_steps] + 1],
        }
    )
    return {
        "school": schools,
        "app_user": users,
        "user_school": user_school,
        "teacher": teachers,
        "observation": observations,
        "domain_score": scores,
        "action_step": steps,
        "revisit": revisits,
    }


def _reference(engine) -> dict:
    """Seed the rubric and blocks in a fresh database and return their ids."""
    from seeds import seed_reference_data

    with Session(engine) as session:
        seed_reference_data(session=session)
        rv = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).one()  # noqa: E712
        domains = session.exec(
            select(Domain).where(Domain.rubric_version_id == rv.id).order_by(Domain.position)
        ).all()
        blocks = session.exec(select(Block).order_by(Block.position)).all()
        return {
            "rubric_version_id": rv.id,
            "domain_codes": [d.code for d in domains],
            "domain_ids": [d.id for d in domains],
            "block_ids": [b.id for b in blocks],
        }


def _records(df: pd.DataFrame, chunk: int):
    cols = []
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        if s.dtype == bool:
            s = s.astype(int)
        numeric = pd.api.types.is_numeric_dtype(s.dtype) and not s.isna().any()
        cols.append(s.tolist() if numeric else s.astype(object).where(s.notna(), None).tolist())
    rows = list(zip(*cols, strict=True))
    for i in range(0, len(rows), chunk):
        yield rows[i : i + chunk]


def build_sqlite(scale: Scale = DISTRICT, path: Path | None = None) -> Path:
    """The cached SQLite file for `scale`, built (migrated, generated, bulk loaded) if missing."""
    path = path or CACHE / f"{_stamp(scale, schema=True)}.sqlite"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for leftover in tmp.parent.glob(tmp.name + "*"):
        leftover.unlink()
    t0 = time.perf_counter()
    engine = build_engine(f"sqlite:///{tmp}")
    upgrade(engine)
    reference = _reference(engine)
    engine.dispose()
    tables = generate(scale, reference)
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-400000")
    # Indexes are rebuilt after the load: one sort per index instead of 2.6 M random inserts.
    marks = ",".join("?" * len(BIG_TABLES))
    index_sql = con.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL AND tbl_name IN ({marks})",
        BIG_TABLES,
    ).fetchall()
    for name, _ in index_sql:
        con.execute(f'DROP INDEX "{name}"')
    for table, df in tables.items():
        sql = f'INSERT INTO "{table}" ({",".join(df.columns)}) VALUES ({",".join("?" * len(df.columns))})'
        con.execute("BEGIN")
        for rows in _records(df, 200_000):
            con.executemany(sql, rows)
        con.execute("COMMIT")
    for _, sql in index_sql:
        con.execute(sql)
    con.execute("ANALYZE")
    con.close()
    tmp.rename(path)
    log.info("Built %s in %.1f s (%s)", path.name, time.perf_counter() - t0, counts(tables))
    return path


def counts(tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    return {name: len(df) for name, df in tables.items()}


def _csv_dir(scale: Scale) -> Path:
    """CSV files for PostgreSQL COPY, written once from the generator and cached."""
    folder = CACHE / f"{_stamp(scale)}-csv"
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    # The reference ids come from a fresh migrated SQLite database; PostgreSQL seeds the same rows in
    # the same order, so the ids agree.
    scratch = folder / "reference.sqlite"
    scratch.unlink(missing_ok=True)
    engine = build_engine(f"sqlite:///{scratch}")
    upgrade(engine)
    reference = _reference(engine)
    engine.dispose()
    for p in folder.glob("reference.sqlite*"):
        p.unlink()
    (folder / "reference.json").write_text(json.dumps(reference))
    for table, df in generate(scale, reference).items():
        out = df.copy()
        for c in out.columns:
            if isinstance(out[c].dtype, pd.DatetimeTZDtype):
                out[c] = out[c].dt.strftime("%Y-%m-%d %H:%M:%S+00")
        out.to_csv(folder / f"{table}.csv", index=False, na_rep="\\N")
    (folder / "done").write_text(repr(asdict(scale)))
    return folder


def load_postgres(url: str, scale: Scale = DISTRICT) -> None:
    """Migrate the (empty) database at `url`, seed reference data and COPY the cached CSVs in."""
    import psycopg

    folder = _csv_dir(scale)
    engine = build_engine(url)
    upgrade(engine)
    reference = _reference(engine)
    if reference != json.loads((folder / "reference.json").read_text()):
        raise RuntimeError("The seeded rubric ids differ from the cached CSVs; delete .bench-cache/")
    with engine.connect() as conn:
        indexes = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='public' AND tablename = ANY(:t)"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            ),
            {"t": list(BIG_TABLES)},
        ).all()
    engine.dispose()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        # Rows are generated consistent; skip per-row foreign-key triggers during the load.
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET TimeZone = 'UTC'")  # the CSV's timestamps are naive UTC
        order = [
            "school",
            "app_user",
            "user_school",
            "teacher",
            "observation",
            "domain_score",
            "action_step",
            "revisit",
        ]
        for table in order:
            csv = folder / f"{table}.csv"
            header = csv.open(encoding="utf-8").readline().strip()
            with (
                conn.cursor() as cur,
                cur.copy(
                    f"COPY \"{table}\" ({header}) FROM STDIN WITH (FORMAT csv, HEADER true, NULL '\\N')"
                ) as copy,
                csv.open("rb") as fh,
            ):
                while data := fh.read(1 << 20):
                    copy.write(data)
        conn.execute("SET session_replication_role = origin")
        for _, sql in indexes:
            conn.execute(sql)
        for table in order:
            if table != "user_school":
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM \"{table}\"))"
                )
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pilot", action="store_true", help="pilot scale instead of district scale")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    scale = PILOT if args.pilot else DISTRICT
    t0 = time.perf_counter()
    path = build_sqlite(scale)
    con = sqlite3.connect(path)
    sizes = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in BIG_TABLES}
    log.info("%s ready in %.1f s: %s", path, time.perf_counter() - t0, sizes)


if __name__ == "__main__":
    main()
