"""The deterministic demo: one fictional school year (August 2025 to June 2026) that reproduces the
pilot figures of DOMAIN.md. Every person, school and student named here is invented.

A fixed random seed and hard-coded, calibrated parameters make every run produce the same rows.
Rows are bulk-inserted with explicit ids (a few seconds); step states are what
`coaching.lifecycle.replay` gives for each step's revisits. Seeding is idempotent (the AppSetting
`demo_seeded` marks a database that holds the demo); `reset=True` wipes every data row first.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import bcrypt
from sqlalchemy import func, insert
from sqlmodel import Session, SQLModel, select

import db  # noqa: F401 - every model registered in the metadata
from coaching import audit, caseload
from coaching.exchange import reset_sequences, wipe_all
from coaching.lifecycle import RevisitFact, replay
from coaching.lifecycle import step as transition
from coaching.settings import get_settings
from coaching.timeutil import local_date, month_key, school_tz
from db.models import (
    ActionStep,
    AppSetting,
    Block,
    CoachingGoal,
    Domain,
    DomainScore,
    LibraryStep,
    Observation,
    Revisit,
    RubricVersion,
    School,
    StepEvent,
    Teacher,
    User,
    UserSchool,
)
from seeds import seed_reference_data

log = logging.getLogger(__name__)

DEMO_KEY = caseload.DEMO_KEY  # "demo_seeded"
DEMO_PASSWORD = "coachloop-demo"  # public and demo-only: printed by `seed-demo`, documented in the README
SEED = 20250818

# Calibrated against program_metrics (see tests/test_demo.py); change them and re-check the figures.
N_TEACHERS = 155
N_OBSERVATIONS = 1781
N_STEPS = 2185
N_LOW_CADENCE = 12  # teachers seen only twice: the 8% not in sustained coaching
BASE_MEAN, BASE_SD = 2.305, 0.42
GROWTH_MEAN, GROWTH_SD = 0.475, 0.18
OBS_NOISE_SD, MARK_NOISE_SD = 0.12, 0.45
NOT_OBSERVED_P = 0.10
EFFORT_SLOPE = 1.3  # observations per teacher ~ exp(-slope * (baseline - mean))
P_IMPLEMENTED, P_PARTIAL = 0.60, 0.25
DOMAIN_OFFSETS = {
    "CR": -0.03,
    "SB": -0.67,
    "EN": -0.14,
    "CFU": -0.19,
    "RIG": -0.24,
    "SG": 0.52,
    "RI": 0.72,
    "LD": -0.04,
}
YEAR_FIRST, YEAR_LAST = date(2025, 8, 18), date(2026, 6, 12)
BREAKS = [
    (date(2025, 11, 24), date(2025, 11, 28)),
    (date(2025, 12, 22), date(2026, 1, 2)),
    (date(2026, 3, 30), date(2026, 4, 3)),
]

SCHOOLS = [
    ("JHE", "Juniper Hollow Elementary", 512),
    ("CRK", "Cedar Ridge K-8", 538),
    ("LVE", "Lark Valley Elementary", 436),
    ("MBP", "Millbrook Primary", 414),
]
COACHES = [
    ("demo-coach1", "Rosalind Quayle (demo)", ["JHE"]),
    ("demo-coach2", "Tobias Fenwright (demo)", ["JHE", "MBP"]),
    ("demo-coach3", "Imani Calloway (demo)", ["CRK"]),
    ("demo-coach4", "Desmond Harrowgate (demo)", ["CRK"]),
    ("demo-coach5", "Priya Larkspur (demo)", ["LVE"]),
    ("demo-coach6", "Wendell Ashcombe (demo)", ["LVE", "CRK"]),
    ("demo-coach7", "Marguerite Olsen-Vale (demo)", ["MBP"]),
    ("demo-coach8", "Callum Brightwater (demo)", ["JHE", "LVE"]),
]
FIRST_NAMES = (
    "Adaeze Alden Annika Bexley Briar Cassius Celeste Corwin Dahlia Delphine Emrys Esme Fenna Florian "
    "Greer Hollis Ingrid Isolde Jasper Juniper Kestrel Linnea Lucan Maren Marisela Nico Odessa Orrin "
    "Perpetua Quill Rosamund Soren Tamsin Thaddeus Ulla Vesper Wren Yardley Zinnia Anselm"
).split()
LAST_NAMES = (
    "Ashgrove Bellwether Brambleton Copperfield Dunmore Elderidge Fairhaven Fernhill Glenwarren "
    "Hawthorne-Lee Ivybridge Kettleworth Larchmont Merriweather Northcote Oakhaven Pennywhistle "
    "Quarrington Redfern Silverbirch Thistlewood Umberton Wexcombe Yarrowby Zephyrine"
).split()
STUDENTS = (
    "Marisol Dashiell Anouk Thiago Wrenna Ezekiel Priyanka Lennox Soledad Caspian Noor Benedikt "
    "Yusuf Ottilie Rafferty Amara Kalani Fitzgerald"
).split()
GRADE_BANDS = ["K-2", "3-5", "6-8"]
SUBJECTS = [
    "ELA",
    "Math",
    "Science",
    "Reading Intervention",
    "Special Education",
    "English Language Development",
]
BLOCK_FOR_DOMAIN = {"SG": "SGR", "RI": "INT"}

NOTE_TEMPLATES = [
    "Warm-up posted; {s1} and {s2} started within a minute, two tables needed a reminder.",
    "Mini-lesson on main idea. {s1} answered the cold call; partner talk ran long.",
    "Guided reading group of five. {s1} self-corrected a decoding error after a prompt.",
    "Independent practice: teacher circulated to three of six tables. {s1} finished early and waited.",
    "Transition from carpet to desks took about four minutes.",
    "Math talk on equivalent fractions; whiteboards used, most students showed work.",
    "Exit ticket collected; {s1} and {s2} asked to redo the second item.",
    "Intervention block, phonics routine followed closely; {s1} tracked print with a finger.",
    "Small group started six minutes after rotation; the rest of the class worked quietly.",
    "Science notebooks: students wrote predictions before the demonstration.",
]
EVIDENCE = {
    "CR": [
        "Entry routine ran without prompting",
        "Materials handed out by table captains",
        "Directions repeated three times",
    ],
    "SB": [
        "Teacher scanned the room during work time",
        "Off-task talk at the back went unaddressed",
        "Quiet private correction to {s1}",
    ],
    "EN": [
        "Most students answered on whiteboards",
        "Only volunteers answered",
        "Timed partner talk, all pairs on task",
    ],
    "CFU": [
        "Checked work of the first items at every desk",
        "Asked 'any questions?' and moved on",
        "Sorted exit tickets by error",
    ],
    "RIG": [
        "Grade-level text with a glossary scaffold",
        "Task simplified to recall questions",
        "Asked {s1} to justify an answer",
    ],
    "SG": [
        "Group formed from last week's running records",
        "Teacher table started within two minutes",
        "Group interrupted four times",
    ],
    "RI": [
        "Decoding errors corrected on the spot",
        "Progress monitoring done on schedule",
        "{s1} read the passage twice, fewer errors",
    ],
    "LD": [
        "Clear model, then guided practice",
        "Pacing slowed in the last ten minutes",
        "Objective stated and revisited at the end",
    ],
}
REVISIT_NOTES = {
    "implemented": [
        "Seen throughout the segment",
        "Did it without the visual cue",
        "Students now do it on their own",
    ],
    "partial": ["Started well, dropped off midway", "Used once, not during the transition"],
    "not_yet": ["Not seen today", "Planned but skipped when time ran short"],
}
GOAL_TEXT = "Build consistent {domain} habits so that students spend more of the block learning."


@dataclass
class DemoResult:
    """What `seed_demo` did: whether it created anything, the demo accounts and the row counts."""

    created: bool
    password: str = DEMO_PASSWORD
    accounts: list[tuple[str, str, str]] = field(default_factory=list)  # (username, role, display name)
    counts: dict[str, int] = field(default_factory=dict)


def _school_days() -> list[date]:
    days, d = [], YEAR_FIRST
    while d <= YEAR_LAST:
        if d.weekday() < 5 and not any(a <= d <= b for a, b in BREAKS):
            days.append(d)
        d += timedelta(days=1)
    return days


def _local_moment(day: date, minute: int) -> datetime:
    local = datetime.combine(day, time(8, 0), tzinfo=school_tz()) + timedelta(minutes=minute)
    return local.astimezone(UTC)


def _draw_score(rng: random.Random, x: float) -> int:
    # Probabilistic rounding keeps the expected mark equal to the latent level (inside 1..4).
    x = min(4.0, max(1.0, x))
    low = math.floor(x)
    return int(min(4, low + (1 if rng.random() < x - low else 0)))


def _allocate(weights: list[float], total: int, low: int, high: int) -> list[int]:
    """Integers proportional to weights, each in low..high, summing exactly to `total`."""
    scale = total / sum(weights)
    raw = [min(high, max(low, w * scale)) for w in weights]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    i = 0
    while sum(counts) < total:
        j = order[i % len(order)]
        if counts[j] < high:
            counts[j] += 1
        i += 1
    while sum(counts) > total:
        j = order[-1 - (i % len(order))]
        if counts[j] > low:
            counts[j] -= 1
        i += 1
    return counts


def _demo_present(session: Session) -> bool:
    return session.get(AppSetting, DEMO_KEY) is not None


def _accounts(session: Session) -> list[tuple[str, str, str]]:
    rows = session.exec(
        select(User.username, User.role, User.display_name).where(User.is_demo == True).order_by(User.id)  # noqa: E712
    ).all()
    return [tuple(r) for r in rows]


def _next_id(session: Session, model: type[SQLModel]) -> int:
    return int(session.exec(select(func.max(model.id))).one() or 0) + 1


def seed_demo_if_empty(*, session: Session) -> bool:
    """Load the demo when the database has no observations and no demo yet; True if it loaded."""
    if _demo_present(session) or session.exec(select(func.count(Observation.id))).one():
        return False
    return seed_demo(session=session).created


def seed_demo(*, session: Session, reset: bool = False) -> DemoResult:
    """Create the demo school year (idempotent); `reset=True` first deletes every data row."""
    if reset:
        wipe_all(session=session)
        session.commit()
    elif _demo_present(session):
        return DemoResult(created=False, accounts=_accounts(session))
    seed_reference_data(session=session)
    counts = _generate(session)
    marker = {"seed": SEED, "counts": counts, "last_day": YEAR_LAST.isoformat()}
    session.add(AppSetting(key=DEMO_KEY, value=json.dumps(marker)))
    audit.record(session, by=None, action="seed", entity="demo", detail=counts)
    reset_sequences(session=session)
    session.commit()
    log.info("Seeded the demo school year: %s", counts)
    return DemoResult(created=True, accounts=_accounts(session), counts=counts)


def _generate(session: Session) -> dict[str, int]:  # noqa: C901 - one linear story of a school year
    rng = random.Random(SEED)
    # Separate streams so that tuning one part (scores, steps) does not reshuffle the others.
    srng, trng = random.Random(SEED + 1), random.Random(SEED + 2)
    settings = get_settings()
    rubric = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).one()  # noqa: E712
    domains = {d.code: d for d in session.exec(select(Domain).where(Domain.rubric_version_id == rubric.id))}
    blocks = {b.code: b for b in session.exec(select(Block))}
    library: dict[str, list[LibraryStep]] = defaultdict(list)
    for item in session.exec(select(LibraryStep).order_by(LibraryStep.id)):
        library[item.domain_code].append(item)
    codes = [c for c in DOMAIN_OFFSETS if c in domains]

    # Schools and people.
    schools = {code: School(code=code, name=name, enrolment=n) for code, name, n in SCHOOLS}
    session.add_all(schools.values())
    session.flush()
    pw_hash = bcrypt.hashpw(DEMO_PASSWORD.encode(), bcrypt.gensalt(rounds=12)).decode()  # once

    def add_user(username: str, role: str, name: str, school_codes: list[str]) -> User:
        user = User(
            username=username,
            display_name=name,
            role=role,
            password_hash=pw_hash,
            is_demo=True,
            email=f"{username}@demo.coachloop.invalid",
        )
        session.add(user)
        session.flush()
        session.add_all(UserSchool(user_id=user.id, school_id=schools[c].id) for c in school_codes)
        return user

    add_user("demo-admin", "admin", "Harriet Vantongeren (demo)", [])
    add_user("demo-leader", "leader", "Octavia Pemberly (demo)", list(schools))
    coaches = [add_user(u, "coach", n, sc) for u, n, sc in COACHES]
    coaches_of = {
        c: [co for co, (_, _, sc) in zip(coaches, COACHES, strict=True) if c in sc] for c in schools
    }

    # Teachers: a baseline skill, a growth over the year, a caseload coach.
    school_codes = [c for c, _, _ in SCHOOLS]
    shares = [n for _, _, n in SCHOOLS]
    teachers: list[Teacher] = []
    base, growth = [], []
    used_names: set[str] = set()
    for i in range(N_TEACHERS):
        code = rng.choices(school_codes, weights=shares)[0] if i >= len(school_codes) else school_codes[i]
        while True:
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            if name not in used_names:
                used_names.add(name)
                break
        coach = coaches_of[code][i % len(coaches_of[code])]
        teachers.append(
            Teacher(
                name=name,
                email=f"{name.lower().replace(' ', '.')}@demo.coachloop.invalid",
                school_id=schools[code].id,
                grade_band=rng.choice(GRADE_BANDS),
                subject=rng.choice(SUBJECTS),
                coach_id=coach.id,
            )
        )
        base.append(min(3.6, max(1.2, rng.gauss(BASE_MEAN, BASE_SD))))
        growth.append(rng.gauss(GROWTH_MEAN, GROWTH_SD))
    session.add_all(teachers)
    session.flush()
    for k in range(3):  # three teacher logins
        login = add_user(f"demo-teacher{k + 1}", "teacher", f"{teachers[k].name} (demo)", [])
        teachers[k].user_id = login.id
    session.flush()

    # Observations per teacher: effort follows need; a few high-baseline teachers are seen only twice.
    by_base = sorted(range(N_TEACHERS), key=lambda i: (-base[i], i))
    low_cadence = set(rng.sample(by_base[: N_TEACHERS // 3], N_LOW_CADENCE))
    regular = [i for i in range(N_TEACHERS) if i not in low_cadence]
    weights = [math.exp(-EFFORT_SLOPE * (base[i] - BASE_MEAN)) * rng.uniform(0.85, 1.15) for i in regular]
    counts = dict(zip(regular, _allocate(weights, N_OBSERVATIONS - 2 * N_LOW_CADENCE, 5, 22), strict=True))
    counts.update({i: 2 for i in low_cadence})

    days = _school_days()
    plan: list[tuple[int, int, date, int]] = []  # (teacher index, k-th observation, day, minute)
    for i in range(N_TEACHERS):
        n = counts[i]
        if n == 2:
            first = rng.randrange(20, len(days) - 40)
            picks = [first, first + rng.randrange(10, 20)]
        else:
            first, last = rng.randrange(0, 15), len(days) - 1 - rng.randrange(0, 12)
            span = (last - first) / (n - 1)
            picks = []
            for k in range(n):
                jitter = 0 if k in (0, n - 1) else rng.randint(-int(span // 4), int(span // 4))
                picks.append(max(picks[-1] + 1 if picks else 0, min(last, round(first + k * span) + jitter)))
        for k, p in enumerate(picks):
            plan.append((i, k, days[p], rng.randrange(0, 390)))
    plan.sort(key=lambda r: (r[2], r[3], r[0]))

    # Steps to assign at each observation: one each, two at a teacher's first, the rest at random.
    extra = N_STEPS - N_OBSERVATIONS - N_TEACHERS
    later = [j for j, (_, k, _, _) in enumerate(plan) if k > 0]
    two_more = set(rng.sample(later, extra))
    n_assign = [2 if (k == 0 or j in two_more) else 1 for j, (_, k, _, _) in enumerate(plan)]

    obs_id, score_id = _next_id(session, Observation), _next_id(session, DomainScore)
    step_id, revisit_id = _next_id(session, ActionStep), _next_id(session, Revisit)
    obs_rows, score_rows, step_rows, revisit_rows, goal_rows = [], [], [], [], []
    steps_of: dict[int, list[dict]] = defaultdict(list)  # teacher index -> step rows (live state in "_s")
    revisits_of: dict[int, list[RevisitFact]] = defaultdict(list)
    cap = settings.open_step_cap

    for j, (i, k, day, minute) in enumerate(plan):
        t = teachers[i]
        n = counts[i]
        at = _local_moment(day, minute)
        observer = coaches[[c.id for c in coaches].index(t.coach_id)]
        if rng.random() < 0.12:
            observer = rng.choice(coaches_of[next(c for c in schools if schools[c].id == t.school_id)])
        level = base[i] + growth[i] * (k / (n - 1)) + srng.gauss(0, OBS_NOISE_SD)
        focus = rng.choice(codes)
        block = (
            blocks.get(BLOCK_FOR_DOMAIN.get(focus, ""), None) or blocks[rng.choice(["WG", "IP", "WG", "TR"])]
        )
        s1, s2 = rng.sample(STUDENTS, 2)
        u = rng.random()
        debriefed = (
            None
            if u < 0.05
            else at + timedelta(hours=rng.uniform(49, 120) if u < 0.13 else 1 + 40 * rng.random() ** 1.6)
        )
        obs_rows.append(
            {
                "id": obs_id,
                "teacher_id": t.id,
                "observer_id": observer.id,
                "observed_at": at,
                "block_id": block.id,
                "rubric_version_id": rubric.id,
                "duration_min": rng.choice([10, 15, 15, 20]),
                "notes": rng.choice(NOTE_TEMPLATES).format(s1=s1, s2=s2),
                "notes_private": rng.random() < 0.1,
                "school_id": t.school_id,
                "grade_band": t.grade_band,
                "debriefed_at": debriefed,
                "debrief_notes": ""
                if debriefed is None
                else "Debriefed; agreed on the next step and a practice run.",
                "acknowledged_at": None,
                "reflection": "",
                "client_token": f"demo-{obs_id}",
                "created_at": at,
                "updated_at": at,
            }
        )
        marks = {}
        for code in codes:
            u, noise = srng.random(), srng.gauss(0, MARK_NOISE_SD)
            score = None if u < NOT_OBSERVED_P else _draw_score(srng, level + DOMAIN_OFFSETS[code] + noise)
            marks[code] = score
            evidence = "" if score is None else rng.choice(EVIDENCE[code]).format(s1=s1)
            score_rows.append(
                {
                    "id": score_id,
                    "observation_id": obs_id,
                    "domain_id": domains[code].id,
                    "domain_code": code,
                    "score": score,
                    "evidence": evidence,
                    "teacher_id": t.id,
                    "school_id": t.school_id,
                    "grade_band": t.grade_band,
                    "observer_id": observer.id,
                    "block_id": block.id,
                    "rubric_version_id": rubric.id,
                    "observed_at": at,
                    "month": month_key(at),
                }
            )
            score_id += 1

        # Revisit every open or mastered step, in the order they were assigned.
        for st in steps_of[i]:
            if st["_s"] not in ("open", "mastered"):
                continue
            u = trng.random()
            rating = (
                "implemented"
                if u < P_IMPLEMENTED
                else "partial"
                if u < P_IMPLEMENTED + P_PARTIAL
                else "not_yet"
            )
            fact = RevisitFact(at=at, observation_id=obs_id, rating=rating)
            st["_s"], st["_m"], _ = transition(st["_s"], st["_m"], fact)
            revisits_of[st["id"]].append(fact)
            revisit_rows.append(
                {
                    "id": revisit_id,
                    "step_id": st["id"],
                    "observation_id": obs_id,
                    "rating": rating,
                    "note": trng.choice(REVISIT_NOTES[rating]) if trng.random() < 0.5 else "",
                    "revisited_at": at,
                }
            )
            revisit_id += 1

        # Make room under the open-step cap, then assign.
        want = n_assign[j]
        open_steps = [st for st in steps_of[i] if st["_s"] == "open"]
        while len(open_steps) + want > cap:
            oldest = open_steps.pop(0)
            oldest["_s"], oldest["dropped_at"] = "dropped", at
            oldest["drop_reason"] = "Set aside to make room for a more urgent step."
        weakest = sorted((c for c in codes if marks[c] is not None), key=lambda c: (marks[c], trng.random()))
        active_titles = {st["title"] for st in steps_of[i] if st["_s"] in ("open", "mastered")}
        for m in range(want):
            code = weakest[m % len(weakest)] if weakest else focus
            options = [x for x in library[code] if x.title not in active_titles] or library[code]
            item = trng.choice(options)
            active_titles.add(item.title)
            row = {
                "id": step_id,
                "teacher_id": t.id,
                "observation_id": obs_id,
                "library_step_id": item.id,
                "domain_code": code,
                "title": item.title,
                "custom_text": "",
                "assigned_by": observer.id,
                "assigned_at": at,
                "check_back_on": local_date(at) + timedelta(days=settings.check_back_days),
                "state": "open",
                "mastered_at": None,
                "sustained_at": None,
                "dropped_at": None,
                "drop_reason": "",
                "updated_at": at,
                "_s": "open",
                "_m": None,
            }
            step_rows.append(row)
            steps_of[i].append(row)
            step_id += 1
        if k == 0:
            goal_code = weakest[0] if weakest else focus
            closed = local_date(at) + timedelta(days=120) if trng.random() < 0.3 else None
            goal_rows.append(
                {
                    "teacher_id": t.id,
                    "text": GOAL_TEXT.format(domain=domains[goal_code].name),
                    "domain_code": goal_code,
                    "set_by": observer.id,
                    "set_on": local_date(at),
                    "closed_on": closed if closed and closed <= YEAR_LAST else None,
                }
            )
        obs_id += 1

    # Stored state is exactly the replay of each step's revisits (and drop time).
    event_rows = []
    for row in step_rows:
        result = replay(revisits_of[row["id"]], row["dropped_at"])
        assert result.state == row["_s"], (row["id"], result.state, row["_s"])
        row.update(
            state=result.state,
            mastered_at=result.mastered_at,
            sustained_at=result.sustained_at,
            dropped_at=result.dropped_at,
        )
        changes = [row["assigned_at"]] + [e[0] for e in result.events]
        row["updated_at"] = max(changes)
        for ev_at, before, after, cause in result.events:
            event_rows.append(
                {"step_id": row["id"], "at": ev_at, "from_state": before, "to_state": after, "cause": cause}
            )
        del row["_s"], row["_m"]

    event_id = _next_id(session, StepEvent)
    for n_, ev in enumerate(event_rows):
        ev["id"] = event_id + n_
    goal_id = _next_id(session, CoachingGoal)
    for n_, g in enumerate(goal_rows):
        g["id"] = goal_id + n_

    for model, rows in (
        (Observation, obs_rows),
        (DomainScore, score_rows),
        (ActionStep, step_rows),
        (Revisit, revisit_rows),
        (StepEvent, event_rows),
        (CoachingGoal, goal_rows),
    ):
        for chunk in range(0, len(rows), 5000):
            session.execute(insert(model), rows[chunk : chunk + 5000])
    return {
        "schools": len(schools),
        "teachers": len(teachers),
        "coaches": len(coaches),
        "observations": len(obs_rows),
        "domain_scores": len(score_rows),
        "action_steps": len(step_rows),
        "revisits": len(revisit_rows),
        "step_events": len(event_rows),
        "goals": len(goal_rows),
    }
