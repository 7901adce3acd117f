"""Page rerun times through AppTest on the demo data (pilot scale), as a leader and as a coach.

For each page a role may open: the first draw after switching to it (cold: imports, cached
queries filled) and the median of later reruns (what every click costs a user).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import CACHE, ROOT

log = logging.getLogger(__name__)
APP = str(ROOT / "app.py")
ROLES = ("leader", "coach")


def _source_hash() -> str:
    """Changes whenever the schema, the migrations or the seeds change (the cached demo is rebuilt)."""
    h = hashlib.sha256()
    files = sorted(
        [*ROOT.glob("seeds/*.py"), *ROOT.glob("seeds/*.yaml"), *ROOT.glob("db/migrations/versions/*.py")]
    ) + [ROOT / "db" / "models.py"]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def demo_database() -> tuple[Path, bool, float]:
    """A SQLite file holding the demo (built once, cached under .bench-cache/); returns
    (path, demo_loaded, seconds spent building it now, 0 when cached)."""
    from sqlmodel import Session, select

    from db.engine import build_engine
    from db.migrate import upgrade
    from db.models import User

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"demo-{_source_hash()}.db"
    built = 0.0
    if not path.exists():
        for stale in CACHE.glob("demo-*.db"):  # built from older sources
            stale.unlink(missing_ok=True)
        tmp = path.with_suffix(".building")
        tmp.unlink(missing_ok=True)
        started = time.perf_counter()
        engine = build_engine(f"sqlite:///{tmp}")
        upgrade(engine)
        from seeds import seed_reference_data
        from seeds.demo import seed_demo_if_empty

        with Session(engine, expire_on_commit=False) as s:
            seed_reference_data(session=s)
            s.commit()
            seed_demo_if_empty(session=s)
            s.commit()
        engine.dispose()
        for extra in ("-wal", "-shm"):
            Path(f"{tmp}{extra}").unlink(missing_ok=True)
        tmp.rename(path)
        built = time.perf_counter() - started
    engine = build_engine(f"sqlite:///{path}")
    with Session(engine) as s:
        demo = s.exec(select(User).where(User.is_demo == True)).first() is not None  # noqa: E712
    engine.dispose()
    return path, demo, built


def _users(url: str, demo: bool) -> dict[str, int]:
    """A leader and a coach with a caseload (demo accounts, or made here when there is no demo)."""
    from sqlmodel import Session, select

    from db.engine import build_engine
    from db.models import School, Teacher, User, UserSchool

    engine = build_engine(url)
    out: dict[str, int] = {}
    with Session(engine, expire_on_commit=False) as s:
        if demo:
            for role in ROLES:
                q = select(User).where(User.role == role, User.is_demo == True).order_by(User.id)  # noqa: E712
                if role == "coach":
                    q = q.where(User.id.in_(select(Teacher.coach_id)))
                u = s.exec(q).first()
                if u is not None:
                    out[role] = u.id
        if len(out) < len(ROLES):
            school = s.exec(select(School)).first() or School(code="B1", name="Bench School")
            s.add(school)
            s.flush()
            for role in ROLES:
                if role in out:
                    continue
                u = User(username=f"bench-{role}", display_name=f"Bench {role}", role=role)
                s.add(u)
                s.flush()
                s.add(UserSchool(user_id=u.id, school_id=school.id))
                if role == "coach":
                    s.add(Teacher(name="Bench Teacher", school_id=school.id, grade_band="3-5", coach_id=u.id))
                out[role] = u.id
            s.commit()
    engine.dispose()
    return out


def _a_teacher(url: str, coach_id: int) -> int:
    """The coach's caseload teacher with the most steps (the fullest observation form)."""
    from sqlmodel import Session, func, select

    from db.engine import build_engine
    from db.models import ActionStep, Teacher

    engine = build_engine(url)
    with Session(engine) as s:
        tid = s.exec(
            select(Teacher.id)
            .join(ActionStep, ActionStep.teacher_id == Teacher.id, isouter=True)
            .where(Teacher.coach_id == coach_id)
            .group_by(Teacher.id)
            .order_by(func.count(ActionStep.id).desc(), Teacher.id)
        ).first()
    engine.dispose()
    return tid


def _time_page(user_id: int, page_file: str, reruns: int, state: dict | None = None) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["user_id"] = user_id
    at.run()
    for key, value in (state or {}).items():
        at.session_state[key] = value
    started = time.perf_counter()
    at.switch_page(page_file).run()
    first = time.perf_counter() - started
    times = []
    for _ in range(reruns):
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
    return {
        "first_ms": round(first * 1000, 1),
        "rerun_p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
        "rerun_max_ms": round(max(times) * 1000, 1) if times else None,
        "exception": str(at.exception[0].message)[:200] if at.exception else "",
    }


def run(quick: bool = False) -> dict:
    """Time every page for a leader and a coach on the demo database."""
    import streamlit as st
    from streamlit import logger as st_logger

    from db.engine import reset_engine
    from ui.nav import pages_for

    # AppTest outside `streamlit run` warns "missing ScriptRunContext" on every run.
    st_logger.set_log_level("error")
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )
    cached, demo, built = demo_database()
    work = Path(tempfile.mkdtemp(prefix="coachloop-bench-pages-"))
    db = work / "coachloop.db"
    shutil.copy(cached, db)  # pages may write (drafts, briefs): never into the cached file
    url = f"sqlite:///{db}"
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    reset_engine()
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        users = _users(url, demo)
        reruns = 2 if quick else 5
        result: dict = {
            "data": "demo (pilot scale)" if demo else "no demo generator yet: near-empty database",
            "demo_build_s": round(built, 1),
            "reruns_per_page": reruns,
        }
        for role in ROLES:
            rows = {}
            for spec in pages_for(role):
                rows[Path(spec.file).stem] = _time_page(users[role], spec.file, reruns)
            if role == "coach" and "app_pages/observe.py" in [p.file for p in pages_for(role)]:
                # The form as a coach uses it: a teacher chosen, so every domain and step is drawn.
                rows["observe (teacher chosen)"] = _time_page(
                    users[role],
                    "app_pages/observe.py",
                    reruns,
                    {"observe_teacher_id": _a_teacher(url, users[role])},
                )
            result[role] = rows
        failures = [
            f"{r}/{p}: {v['exception']}" for r in ROLES for p, v in result[r].items() if v["exception"]
        ]
        for r in ROLES:
            for v in result[r].values():
                del v["exception"]
        if failures:
            raise RuntimeError(f"pages raised under AppTest: {', '.join(failures)}")
        return result
    finally:
        reset_engine()
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        shutil.rmtree(work, ignore_errors=True)
