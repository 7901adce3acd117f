"""Benchmark of the observation save path: `record_observation` with 4 scored domains, 1 revisit
and 1 new library step, on SQLite and on PostgreSQL; p50/p95 in milliseconds.

Each save uses a fresh session (as a page does) and is timed around the domain call only. Every
save revisits the step the previous save assigned ("implemented"), so the teacher keeps one open
step and the cap never interferes.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from coaching.observations import NewStep, ObservationDraft, record_observation
from db.engine import build_engine
from db.migrate import upgrade
from db.models import ActionStep, LibraryStep, School, Teacher, User
from seeds import seed_reference_data

log = logging.getLogger(__name__)
TEACHERS = 20
SCORES = {"CR": 2, "SB": 1, "EN": 3, "CFU": 2}


def _setup(engine: Engine) -> tuple[User, list[int], list[str]]:
    with Session(engine, expire_on_commit=False) as s:
        seed_reference_data(session=s)
        school = School(code="BENCH", name="Benchmark Elementary")
        coach = User(username="bench-coach", display_name="Bench Coach", role="coach")
        s.add(school)
        s.add(coach)
        s.flush()
        teachers = [
            Teacher(name=f"Bench Teacher {i:02d}", school_id=school.id, grade_band="3-5", coach_id=coach.id)
            for i in range(TEACHERS)
        ]
        s.add_all(teachers)
        s.commit()
        codes = list(s.exec(select(LibraryStep.code).where(LibraryStep.status == "active")).all())
        return coach, [t.id for t in teachers], codes


def _latest_open_step(engine: Engine, teacher_id: int) -> int | None:
    with Session(engine) as s:
        return s.exec(
            select(ActionStep.id)
            .where(ActionStep.teacher_id == teacher_id, ActionStep.state == "open")
            .order_by(ActionStep.id.desc())
        ).first()


def _measure(engine: Engine, saves: int) -> dict:
    coach, teacher_ids, codes = _setup(engine)
    start = datetime.now(UTC) - timedelta(days=300)
    # Warm-up: one save per teacher assigns the first step (not timed).
    for i, tid in enumerate(teacher_ids):
        with Session(engine, expire_on_commit=False) as s:
            record_observation(
                session=s,
                draft=ObservationDraft(
                    teacher_id=tid,
                    block_code="WG",
                    observed_at=start + timedelta(minutes=i),
                    scores=dict(SCORES),
                    new_steps=[NewStep(library_code=codes[i % len(codes)])],
                ),
                by=coach,
            )
    timings = []
    for i in range(saves):
        tid = teacher_ids[i % len(teacher_ids)]
        step_id = _latest_open_step(engine, tid)
        draft = ObservationDraft(
            teacher_id=tid,
            block_code="WG",
            observed_at=start + timedelta(days=1, hours=i),
            scores=dict(SCORES),
            evidence={"CR": "Entry routine took three minutes"},
            revisits={step_id: "implemented"} if step_id else {},
            new_steps=[NewStep(library_code=codes[(i + 7) % len(codes)])],
            client_token=f"bench-{i}",
        )
        with Session(engine, expire_on_commit=False) as s:
            t0 = time.perf_counter()
            record_observation(session=s, draft=draft, by=coach)
            timings.append((time.perf_counter() - t0) * 1000)
    return _stats(timings)


def _stats(ms: list[float]) -> dict:
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "saves": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(cuts[94], 2),
        "max_ms": round(max(ms), 2),
    }


def run(quick: bool = False) -> dict:
    """Time `record_observation` (4 scores, 1 revisit, 1 new library step) on SQLite and
    PostgreSQL: 200 saves each (50 when quick). Returns p50/p95 per backend in ms."""
    from tests.pgserver import PgServer

    saves = 50 if quick else 200
    out: dict = {"benchmark": "save", "saves": saves}
    with tempfile.TemporaryDirectory(prefix="coachloop-bench-save-") as tmp:
        engine = build_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        out["sqlite"] = _measure(engine, saves)
        engine.dispose()
    server = PgServer().start()
    try:
        engine = build_engine(server.create_database("bench_save"))
        upgrade(engine)
        out["postgresql"] = _measure(engine, saves)
        engine.dispose()
    finally:
        server.stop()
    log.info("save benchmark: %s", out)
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
