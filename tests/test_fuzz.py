"""Fuzzing the domain layer with hypothesis: every input ends in a saved record or a clear
CoachloopError, never another exception and never a partial write; the step machine keeps its rules
for any sequence of revisits."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import Session, select

from coaching.errors import CoachloopError
from coaching.lifecycle import SUSTAIN_AFTER_DAYS, TERMINAL, RevisitFact, replay
from coaching.timeutil import days_between
from db.models import (
    ActionStep,
    AuditLog,
    DomainScore,
    ImportBatch,
    Observation,
    Revisit,
    School,
    StepEvent,
    Teacher,
)
from tests import factories

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RATINGS = ("not_yet", "partial", "implemented")

# ---------------------------------------------------------------- step transitions (pure)

_instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
_revisits = st.lists(
    st.builds(
        RevisitFact, at=_instants, observation_id=st.integers(1, 10_000), rating=st.sampled_from(RATINGS)
    ),
    max_size=25,
    unique_by=lambda r: r.observation_id,  # one revisit of a step per observation (a unique key)
)


def _reference(revisits: list[RevisitFact], dropped_at: datetime | None) -> tuple[str, datetime | None]:
    """The table in DOMAIN.md, written out independently: (final state, mastered_at)."""
    state, mastered_at = "open", None
    for rv in sorted(revisits, key=lambda r: (r.at, r.observation_id)):
        if state in ("sustained", "dropped") or (dropped_at is not None and rv.at > dropped_at):
            continue
        if rv.rating == "implemented":
            if state == "open":
                state, mastered_at = "mastered", rv.at
            elif days_between(mastered_at, rv.at) >= 21:
                state = "sustained"
        else:
            state, mastered_at = "open", None
    if dropped_at is not None and state != "sustained":
        state = "dropped"
    return state, mastered_at


@FUZZ
@given(revisits=_revisits, dropped_at=st.one_of(st.none(), _instants))
def test_any_revisit_sequence_replays_to_the_state_the_domain_table_gives(revisits, dropped_at):
    out = replay(revisits, dropped_at)
    state, mastered_at = _reference(revisits, dropped_at)
    assert out.state == state
    if state in ("open", "mastered", "sustained"):
        assert out.mastered_at == mastered_at


@FUZZ
@given(revisits=_revisits, dropped_at=st.one_of(st.none(), _instants))
def test_a_step_is_sustained_only_after_mastered_for_21_days_and_nothing_follows_a_terminal_state(
    revisits, dropped_at
):
    out = replay(revisits, dropped_at)
    assert out.state in ("open", "mastered", "sustained", "dropped")
    if out.state == "sustained":
        assert out.mastered_at is not None and out.sustained_at is not None
        assert days_between(out.mastered_at, out.sustained_at) >= SUSTAIN_AFTER_DAYS
    if out.state == "mastered":
        assert out.mastered_at is not None
    if out.state == "open":
        assert out.mastered_at is None
    if out.state == "dropped":
        assert out.dropped_at == dropped_at
    # History is a chain: each change starts where the last one ended, in time order, and
    # nothing is applied after a terminal state.
    previous, last_at = "open", None
    for at, before, after, _cause in out.events:
        assert before == previous
        assert previous not in TERMINAL
        assert last_at is None or at >= last_at or after == "dropped"
        previous, last_at = after, at
    assert previous == out.state
    # Every revisit was either applied or explicitly ignored.
    assert len(out.ignored) <= len(revisits)
    for rv in out.ignored:
        assert (dropped_at is not None and rv.at > dropped_at) or any(
            after in TERMINAL and at <= rv.at for at, _b, after, _c in out.events
        )


@FUZZ
@given(revisits=_revisits, dropped_at=st.one_of(st.none(), _instants), seed=st.integers(0, 2**32))
def test_replay_does_not_depend_on_the_order_revisits_arrive_in(revisits, dropped_at, seed):
    shuffled = revisits[:]
    random.Random(seed).shuffle(shuffled)
    a, b = replay(revisits, dropped_at), replay(shuffled, dropped_at)
    assert (a.state, a.mastered_at, a.sustained_at, a.dropped_at) == (
        b.state,
        b.mastered_at,
        b.sustained_at,
        b.dropped_at,
    )


# ---------------------------------------------------------------- helpers for the store


def _counts(session: Session) -> dict[str, int]:
    """Rows per table a save or an import may write."""
    session.rollback()  # a fresh snapshot (PostgreSQL) after whatever the last call left behind
    tables = (
        Observation,
        DomainScore,
        ActionStep,
        Revisit,
        StepEvent,
        AuditLog,
        ImportBatch,
        Teacher,
        School,
    )
    return {t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in tables}


def _no_orphans(session: Session) -> None:
    """An imported observation always has its score rows (a spreadsheet row is one lesson's scores)."""
    bare = session.exec(
        select(func.count())
        .select_from(Observation)
        .where(Observation.client_token.like("import:%"))
        .where(~Observation.id.in_(select(DomainScore.observation_id)))
    ).one()
    assert bare == 0, f"{bare} imported observation(s) without score rows"


# ---------------------------------------------------------------- import rows

_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
    max_size=30,
)
_cell = st.one_of(
    _text,
    st.sampled_from(
        ["", "N/A", "not observed", "0", "1", "2", "3", "4", "5", "-1", "2.5", "1e9", "nan", "4.0"]
    ),
    st.integers(-(10**12), 10**12).map(str),
)
_date = st.one_of(
    _text,
    st.dates(min_value=datetime(1, 1, 1).date(), max_value=datetime(9999, 12, 31).date()).map(str),
    st.sampled_from(
        ["2025-09-03", "9/10/2025", "Sep 17 2025", "31/02/2025", "2025-13-01", "yesterday", "0000-00-00"]
    ),
)
_teacher = st.one_of(
    _text, st.sampled_from(["Ana Lopez", "Ben Okafor", "Carla Diaz", "Dev Patel", "ana  LOPEZ"])
)
_observer = st.one_of(_text, st.sampled_from(["mrivera", "jchen", "Maria Rivera", "nobody"]))
_block = st.one_of(_text, st.sampled_from(["Whole Group", "Small Group Rotation", "INT", "WG", ""]))
_row = st.fixed_dictionaries(
    {
        "Date": _date,
        "Teacher": _teacher,
        "Observer": _observer,
        "Block": _block,
        "Culture & Routines": _cell,
        "Safety & Behavior": _cell,
        "Engagement": _cell,
        "Notes": _text,
        "Action Step": st.one_of(_text, st.sampled_from(["Probe correct answers", "Wait time", ""])),
    }
)


@pytest.fixture
def import_world(session):
    from coaching import importer
    from tests._import_helpers import import_file, people

    who = people(session)
    import_file(session, who["admin"], "roster.csv", "roster")
    return importer, who["admin"]


def _csv(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


@settings(FUZZ, max_examples=40)
@given(rows=st.lists(_row, min_size=1, max_size=6))
def test_any_observation_rows_import_completely_or_are_refused_with_nothing_written(
    import_world, session, rows
):
    importer, admin = import_world
    before = _counts(session)
    data = _csv(rows)
    try:
        plan = importer.plan_file(
            session=session, user=admin, source=data, filename="fuzz.csv", kind="observations"
        )
        assert _counts(session) == before, "a dry run wrote rows"
        result = importer.apply_import(session=session, user=admin, plan=plan)
    except CoachloopError:
        assert _counts(session) == before, "a refused import left rows behind"
        return
    after = _counts(session)
    assert after["Observation"] - before["Observation"] == result.created.get("observations", 0)
    _no_orphans(session)


@settings(FUZZ, max_examples=40)
@given(data=st.binary(max_size=600), name=st.sampled_from(["x.csv", "x.xlsx", "x.txt", "x.pdf", ""]))
def test_any_uploaded_bytes_are_read_or_refused_with_a_clear_message(import_world, session, data, name):
    importer, admin = import_world
    before = _counts(session)
    try:
        plan = importer.plan_file(
            session=session, user=admin, source=data, filename=name, kind="observations"
        )
    except CoachloopError as exc:
        assert str(exc)
    else:
        assert isinstance(plan.problems, list)
    assert _counts(session) == before


# ---------------------------------------------------------------- observation save


@pytest.fixture
def save_world(session):
    observations = pytest.importorskip(
        "coaching.observations", reason="the observation save path lands with its issue"
    )
    factories.rubric(session)
    school = factories.school(session)
    coach = factories.user(session, "coach", schools=[school])
    teacher = factories.teacher(session, school, coach=coach)
    first = factories.observation(
        session, teacher, coach, datetime(2025, 9, 2, 17, tzinfo=UTC), {"CR": 2, "SB": 2}
    )
    step = factories.step(session, first, "Wait time")
    return observations, coach, teacher, step


_valid_scores = st.dictionaries(
    st.sampled_from(["CR", "SB", "EN", "CFU", "RIG", "SG", "RI", "LD"]),
    st.sampled_from([None, 1, 2, 3, 4]),
    min_size=1,
    max_size=8,
)
_any_scores = st.dictionaries(
    st.one_of(st.sampled_from(["CR", "SB", "EN", "CFU", "RIG", "SG", "RI", "LD"]), _text),
    st.one_of(st.none(), st.integers(-(10**9), 10**9), st.sampled_from([1, 2, 3, 4])),
    max_size=9,
)
_far_dates = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_recent = st.datetimes(min_value=datetime(2025, 9, 3), max_value=datetime(2026, 6, 1), timezones=st.just(UTC))
_nul_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200
) | st.just("a\x00b")


_new_step = st.one_of(
    st.builds(dict, library_code=st.one_of(st.sampled_from(["CR-1", "SB-2", "EN-1", "XX-9"]), _text)),
    st.builds(dict, custom_text=_nul_text, domain_code=st.one_of(st.just(""), st.sampled_from(["CR", "zz"]))),
)


@settings(FUZZ, max_examples=50)
@given(
    # Each field is mostly valid and sometimes anything, so both outcomes are explored.
    scores=st.one_of(_valid_scores, _valid_scores, _any_scores),
    observed_at=st.one_of(_far_dates, _recent, _recent),
    block=st.one_of(st.sampled_from(["WG", "SGR", "INT"]), st.sampled_from(["WG", "IP"]), _text),
    duration=st.one_of(
        st.sampled_from([1, 15, 240]), st.sampled_from([10, 20]), st.integers(-(10**6), 10**6)
    ),
    notes=_nul_text,
    evidence=st.one_of(
        st.just({}),
        st.dictionaries(st.sampled_from(["CR", "SB", "EN"]), _nul_text, max_size=3),
        st.dictionaries(st.sampled_from(["CR", "zz"]) | _text, _nul_text, max_size=3),
    ),
    revisit=st.one_of(st.none(), st.sampled_from(RATINGS), st.sampled_from(RATINGS), _text),
    new_steps=st.one_of(
        st.just([]),
        st.lists(st.builds(dict, library_code=st.sampled_from(["CR-1", "SB-2", "EN-1"])), max_size=2),
        st.lists(_new_step, max_size=4),
    ),
    private=st.booleans(),
)
def test_any_observation_draft_is_saved_whole_or_refused_with_nothing_written(
    save_world, session, scores, observed_at, block, duration, notes, evidence, revisit, new_steps, private
):
    observations, coach, teacher, step = save_world
    draft = observations.ObservationDraft(
        teacher_id=teacher.id,
        block_code=block,
        observed_at=observed_at,
        duration_min=duration,
        scores=scores,
        evidence=evidence,
        notes=notes,
        notes_private=private,
        revisits={} if revisit is None else {step.id: revisit},
        revisit_notes={},
        new_steps=[observations.NewStep(**n) for n in new_steps],
        client_token=None,
    )
    before = _counts(session)
    try:
        obs = observations.record_observation(session=session, draft=draft, by=coach)
    except CoachloopError as exc:
        event(f"refused: {type(exc).__name__}: {str(exc)[:40]}")
        assert str(exc)
        assert _counts(session) == before, "a refused observation left rows behind"
        return
    event("saved")
    after = _counts(session)
    assert after["Observation"] == before["Observation"] + 1
    # Saved whole: one score row per domain that was scored or given evidence, nothing else.
    expected = {c for c, v in scores.items() if v is not None} | {c for c, e in evidence.items() if e.strip()}
    codes = set(session.exec(select(DomainScore.domain_code).where(DomainScore.observation_id == obs.id)))
    assert codes == expected
    for score in session.exec(select(DomainScore.score).where(DomainScore.observation_id == obs.id)):
        assert score is None or 1 <= score <= 4
    assert after["Revisit"] == before["Revisit"] + (revisit is not None)
    assert after["ActionStep"] - before["ActionStep"] <= len(new_steps)
    assert after["AuditLog"] > before["AuditLog"], "a save wrote no audit record"


@settings(FUZZ, max_examples=50)
@given(
    scores=_valid_scores,
    observed_at=st.datetimes(
        min_value=datetime(2025, 9, 3), max_value=datetime(2026, 6, 1), timezones=st.just(UTC)
    ),
    notes=_nul_text,
    evidence=st.dictionaries(st.sampled_from(["CR", "SB", "EN"]), _nul_text, max_size=3),
    custom=st.lists(_nul_text.filter(str.strip), max_size=1),
    revisit_note=_nul_text,
)
def test_any_text_in_an_otherwise_valid_observation_is_kept_or_refused_cleanly(
    save_world, session, scores, observed_at, notes, evidence, custom, revisit_note
):
    observations, coach, teacher, step = save_world
    draft = observations.ObservationDraft(
        teacher_id=teacher.id,
        block_code="WG",
        observed_at=observed_at,
        scores=scores,
        evidence=evidence,
        notes=notes,
        revisits={step.id: "partial"},
        revisit_notes={step.id: revisit_note},
        new_steps=[observations.NewStep(custom_text=c) for c in custom],
    )
    before = _counts(session)
    try:
        obs = observations.record_observation(session=session, draft=draft, by=coach)
    except CoachloopError as exc:
        event(f"refused: {type(exc).__name__}: {str(exc)[:40]}")
        assert _counts(session) == before, "a refused observation left rows behind"
        return
    event("saved")
    session.rollback()
    saved = session.get(Observation, obs.id, populate_existing=True)
    # Text is kept as written (surrounding whitespace aside); NUL bytes may be dropped.
    assert saved.notes.replace("\x00", "") == notes.strip().replace("\x00", "")
    kept = {
        s.domain_code: s.evidence
        for s in session.exec(select(DomainScore).where(DomainScore.observation_id == obs.id))
    }
    for code, text in evidence.items():
        if text.strip():
            assert kept[code].replace("\x00", "") == text.strip().replace("\x00", "")
