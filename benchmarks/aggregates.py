"""Heatmap aggregates and program figures at district scale, SQLite and PostgreSQL side by side,
next to the naive approach (read every score row into pandas, then group).

`run(quick=False)`: the district dataset (benchmarks/district.py: ~400,000 observations, ~2.6 M
domain scores) on SQLite (cached file) and on a throwaway PostgreSQL server (COPY from cached CSVs).
`run(quick=True)`: the same at pilot scale (4 schools, ~1,800 observations), well under a minute.
Targets (district scale): each default heatmap aggregate under 300 ms on both databases and at
least 10x faster than the naive approach.
"""

from __future__ import annotations

import logging
import statistics
import time

import pandas as pd
from sqlalchemy import func, text
from sqlmodel import Session, select

from benchmarks import district
from coaching import heatmap, metrics
from coaching.heatmap import HeatmapFilters
from coaching.timeutil import local_day_bounds
from db.engine import build_engine
from db.models import School, User

log = logging.getLogger(__name__)
TARGET_MS = 300.0
TARGET_SPEEDUP = 10.0
# (label, rows, restricted to one school). District-wide views are an admin's; the teacher view is
# what a school's leader or coach opens.
CASES = [
    ("school x domain", "school", False),
    ("block x domain", "block", False),
    ("month x domain", "month", False),
    ("teacher x domain (one school)", "teacher", True),
]
# Not stored: an admin sees everything, so no user row is needed to measure as one.
ADMIN = User(username="bench-admin", display_name="Bench admin", role="admin", active=True)


def _median_ms(fn, repeat: int, warm: bool = True) -> tuple[float, object]:
    if warm:
        fn()  # warm the cache: a heatmap on a meeting screen is redrawn, not cold-started
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _naive_scores(session: Session) -> pd.DataFrame:
    """The naive approach's first half: every score row with its dimensions, into pandas."""
    conn = session.connection()
    return pd.read_sql(
        text(
            "SELECT school_id, block_id, month, teacher_id, domain_code, score, observed_at FROM domain_score"
        ),
        conn,
    )


def _naive_group(frame: pd.DataFrame, rows: str, filters: HeatmapFilters, school: int | None) -> pd.DataFrame:
    lo, hi = local_day_bounds(filters.start, filters.end)
    at = pd.to_datetime(frame["observed_at"], utc=True)
    keep = frame["score"].notna() & (at >= lo) & (at < hi)
    if school is not None:
        keep &= frame["school_id"] == school
    col = heatmap.DIMENSIONS[rows]
    return frame[keep].groupby([col, "domain_code"])["score"].agg(["mean", "count"]).reset_index()


def _measure(url: str, repeat: int, naive_repeat: int, metrics_repeat: int) -> dict:
    engine = build_engine(url)
    out: dict = {}
    try:
        with Session(engine, expire_on_commit=False) as session:
            start, end = metrics.default_window(session=session)
            window = HeatmapFilters(start=start, end=end)
            out["window"] = f"{start} to {end}"
            naive_read_ms, frame = _median_ms(lambda: _naive_scores(session), naive_repeat)
            out["score_rows_read_by_naive"] = len(frame)
            school = session.exec(select(func.min(School.id))).one()
            rows: dict = {}
            for label, dim, one_school in CASES:
                filters = HeatmapFilters(start=start, end=end, school_ids=[school] if one_school else None)
                sql_ms, cells = _median_ms(
                    lambda d=dim, f=filters: heatmap.heatmap_cells(
                        session=session, user=ADMIN, rows=d, filters=f
                    ),
                    repeat,
                )
                group_ms, grouped = _median_ms(
                    lambda d=dim, s=one_school: _naive_group(frame, d, window, school if s else None),
                    naive_repeat,
                )
                if len(grouped) != len(cells) or int(grouped["count"].sum()) != int(cells["n_obs"].sum()):
                    raise AssertionError(f"{label}: SQL and naive aggregates disagree")
                naive_ms = naive_read_ms + group_ms
                rows[label] = {
                    "sql_ms": round(sql_ms, 1),
                    "naive_ms": round(naive_ms, 1),
                    "speedup": round(naive_ms / sql_ms, 1),
                    "cells": len(cells),
                    "scores": int(cells["n_obs"].sum()),
                }
            out["heatmap"] = rows
            out["program_metrics_ms"] = _metrics_ms(session, start, end, school, metrics_repeat)
    finally:
        engine.dispose()
    return out


def _metrics_ms(session: Session, start, end, school: int, repeat: int) -> dict:
    """program_metrics over the district and over one school (what the outcomes page computes).
    At district scale each takes seconds, so it is timed once, without a warm-up run."""
    warm = repeat > 1
    overall, _ = _median_ms(
        lambda: metrics.program_metrics(session=session, start=start, end=end), repeat, warm
    )
    one, _ = _median_ms(
        lambda: metrics.program_metrics(session=session, start=start, end=end, school_ids=[school]),
        repeat,
        warm,
    )
    return {"program_metrics_all_ms": round(overall, 1), "program_metrics_one_school_ms": round(one, 1)}


def _pilot_sqlite() -> tuple[str, str]:
    """Quick mode's SQLite data: the demo (cached by the pages benchmark) or the pilot generator."""
    from benchmarks.pages import demo_database

    path, demo, _ = demo_database()
    if demo:
        return str(path), "demo (seeds.demo)"
    return str(district.build_sqlite(district.PILOT)), "pilot generator"


def _load_demo_postgres(url: str) -> None:
    from db.migrate import upgrade
    from seeds import seed_reference_data
    from seeds.demo import seed_demo_if_empty

    engine = build_engine(url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as s:
        seed_reference_data(session=s)
        seed_demo_if_empty(session=s)
        s.commit()
    engine.dispose()


def run(quick: bool = False) -> dict:
    """Measure on SQLite and PostgreSQL; return the figures (and whether the targets are met)."""
    from tests.pgserver import PgServer

    repeat, naive_repeat, metrics_repeat = (5, 3, 3) if quick else (5, 1, 1)
    t0 = time.perf_counter()
    if quick:
        sqlite_path, data = _pilot_sqlite()
    else:
        sqlite_path, data = str(district.build_sqlite(district.DISTRICT)), "district generator"
    result: dict = {"data": data, "sqlite_ready_s": round(time.perf_counter() - t0, 1)}
    per_db = {"sqlite": _measure(f"sqlite:///{sqlite_path}", repeat, naive_repeat, metrics_repeat)}
    server = PgServer().start()
    try:
        url = server.create_database("bench")
        t0 = time.perf_counter()
        if data.startswith("demo"):
            _load_demo_postgres(url)
        else:
            district.load_postgres(url, district.PILOT if quick else district.DISTRICT)
        result["postgresql_load_s"] = round(time.perf_counter() - t0, 1)
        per_db["postgresql"] = _measure(url, repeat, naive_repeat, metrics_repeat)
    finally:
        server.stop()
    result["window"] = per_db["sqlite"]["window"]
    result["score_rows"] = per_db["sqlite"]["score_rows_read_by_naive"]
    table: dict = {}
    met = True
    for db, figures in per_db.items():
        for label, row in figures["heatmap"].items():
            table[f"{db}: {label}"] = row
            met &= row["sql_ms"] < TARGET_MS and row["speedup"] >= TARGET_SPEEDUP
    result["heatmap"] = table
    result["outcomes"] = {db: figures["program_metrics_ms"] for db, figures in per_db.items()}
    result["targets"] = f"< {TARGET_MS:.0f} ms and >= {TARGET_SPEEDUP:.0f}x naive (district scale)"
    result["targets_met"] = met if not quick else "n/a at pilot scale"
    return result


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(json.dumps(run(quick=parser.parse_args().quick), indent=2))
