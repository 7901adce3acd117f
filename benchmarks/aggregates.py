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
from sqlalchemy import text
from sqlmodel import Session

from benchmarks import district
from coaching import heatmap, metrics
from coaching.heatmap import HeatmapFilters
from coaching.timeutil import local_day_bounds
from db.engine import build_engine
from db.models import User

log = logging.getLogger(__name__)
TARGET_MS = 300.0
TARGET_SPEEDUP = 10.0
# (label, user id in the generated data, rows, restrict to school 1). User 1 is the district admin,
# user 2 the leader of school 1 (see district.generate).
CASES = [
    ("school x domain", 1, "school", False),
    ("block x domain", 1, "block", False),
    ("month x domain", 1, "month", False),
    ("teacher x domain (one school)", 2, "teacher", True),
]


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
            rows: dict = {}
            for label, user_id, dim, one_school in CASES:
                user = session.get(User, user_id)
                filters = HeatmapFilters(start=start, end=end, school_ids=[1] if one_school else None)
                sql_ms, cells = _median_ms(
                    lambda u=user, d=dim, f=filters: heatmap.heatmap_cells(
                        session=session, user=u, rows=d, filters=f
                    ),
                    repeat,
                )
                group_ms, grouped = _median_ms(
                    lambda d=dim, s=one_school: _naive_group(frame, d, window, 1 if s else None), naive_repeat
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
            out["program_metrics_ms"] = _metrics_ms(session, start, end, metrics_repeat)
    finally:
        engine.dispose()
    return out


def _metrics_ms(session: Session, start, end, repeat: int) -> dict:
    """program_metrics over the district and over one school (what the outcomes page computes).
    At district scale each takes seconds, so it is timed once, without a warm-up run."""
    warm = repeat > 1
    overall, _ = _median_ms(
        lambda: metrics.program_metrics(session=session, start=start, end=end), repeat, warm
    )
    one, _ = _median_ms(
        lambda: metrics.program_metrics(session=session, start=start, end=end, school_ids=[1]), repeat, warm
    )
    return {"program_metrics_all_ms": round(overall, 1), "program_metrics_one_school_ms": round(one, 1)}


def run(quick: bool = False) -> dict:
    """Measure on SQLite and PostgreSQL; return the figures (and whether the targets are met)."""
    from tests.pgserver import PgServer

    scale = district.PILOT if quick else district.DISTRICT
    repeat, naive_repeat, metrics_repeat = (5, 3, 3) if quick else (5, 1, 1)
    t0 = time.perf_counter()
    sqlite_path = district.build_sqlite(scale)
    result: dict = {"scale": scale.name, "sqlite_ready_s": round(time.perf_counter() - t0, 1)}
    per_db = {"sqlite": _measure(f"sqlite:///{sqlite_path}", repeat, naive_repeat, metrics_repeat)}
    server = PgServer().start()
    try:
        url = server.create_database("bench")
        t0 = time.perf_counter()
        district.load_postgres(url, scale)
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
