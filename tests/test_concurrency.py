"""Several coaches saving at the same moment, through the real save path, on SQLite and PostgreSQL:
every observation arrives whole, nobody sees "database is locked", and the open-step cap holds."""

from __future__ import annotations

import threading
import traceback
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from coaching.errors import StepCapReached
from db.engine import get_engine
from db.models import ActionStep, AuditLog, DomainScore, Observation
from tests import factories

WRITERS = 8
PER_WRITER = 50
CODES = ["CR", "SB", "EN", "CFU", "RIG", "SG", "RI", "LD"]


def _run_together(n: int, work) -> list[str]:
    """Run work(i, session) in n threads released at the same instant; return every error."""
    barrier = threading.Barrier(n)
    errors: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            with Session(get_engine(), expire_on_commit=False) as session:
                barrier.wait(timeout=30)
                work(i, session)
        except Exception:  # noqa: BLE001 - collected and asserted on below
            with lock:
                errors.append(traceback.format_exc())

    threads = [threading.Thread(target=worker, args=(i,), name=f"writer-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return errors


@pytest.fixture
def coaches_and_teachers(session):
    factories.rubric(session)
    school = factories.school(session)
    coaches = [factories.user(session, "coach", schools=[school]) for _ in range(WRITERS)]
    teachers = [factories.teacher(session, school, coach=c) for c in coaches]
    return coaches, teachers


def test_eight_coaches_saving_fifty_observations_each_at_once_all_arrive_whole(
    database_url, session, coaches_and_teachers
):
    from coaching.observations import ObservationDraft, record_observation

    coaches, teachers = coaches_and_teachers
    start = datetime(2025, 9, 1, 16, 0, tzinfo=UTC)

    def work(i: int, s: Session) -> None:
        for k in range(PER_WRITER):
            draft = ObservationDraft(
                teacher_id=teachers[i].id,
                block_code="WG",
                observed_at=start + timedelta(days=k, minutes=i),
                scores={c: 1 + (i + k + j) % 4 for j, c in enumerate(CODES)},
                evidence={"CR": f"writer {i} visit {k}"},
                notes=f"Concurrent save {i}/{k}",
                client_token=f"w{i}-{k}",
            )
            record_observation(session=s, draft=draft, by=coaches[i])

    errors = _run_together(WRITERS, work)
    assert not errors, errors[0]
    assert not any("database is locked" in e for e in errors)

    session.rollback()
    total = session.exec(select(func.count()).select_from(Observation)).one()
    assert total == WRITERS * PER_WRITER
    scores = session.exec(select(func.count()).select_from(DomainScore)).one()
    assert scores == WRITERS * PER_WRITER * len(CODES)
    partial = session.exec(
        select(DomainScore.observation_id)
        .group_by(DomainScore.observation_id)
        .having(func.count() != len(CODES))
    ).all()
    assert partial == []
    per_teacher = dict(
        session.exec(select(Observation.teacher_id, func.count()).group_by(Observation.teacher_id)).all()
    )
    assert per_teacher == {t.id: PER_WRITER for t in teachers}
    audited = session.exec(
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.entity == "observation", AuditLog.action == "create")
    ).one()
    assert audited == WRITERS * PER_WRITER


def test_the_same_observation_sent_by_eight_tabs_at_once_is_saved_once(
    database_url, session, coaches_and_teachers
):
    from coaching.observations import ObservationDraft, record_observation

    coaches, teachers = coaches_and_teachers
    ids: list[int] = []

    def work(_i: int, s: Session) -> None:
        draft = ObservationDraft(
            teacher_id=teachers[0].id,
            block_code="WG",
            observed_at=datetime(2025, 10, 6, 17, tzinfo=UTC),
            scores={"CR": 3},
            client_token="double-click-token",
        )
        ids.append(record_observation(session=s, draft=draft, by=coaches[0]).id)

    errors = _run_together(WRITERS, work)
    assert not errors, errors[0]
    assert len(set(ids)) == 1
    session.rollback()
    assert session.exec(select(func.count()).select_from(Observation)).one() == 1


def test_eight_coaches_assigning_a_step_to_one_teacher_at_once_cannot_pass_the_open_step_cap(
    database_url, session, coaches_and_teachers
):
    from coaching.observations import NewStep, ObservationDraft, record_observation
    from coaching.settings import get_settings

    coaches, teachers = coaches_and_teachers
    # One coach in eight tabs (a coach may only observe their own caseload), all assigning at once.
    coach = coaches[0]
    cap = get_settings().open_step_cap
    refused: list[int] = []

    def work(i: int, s: Session) -> None:
        draft = ObservationDraft(
            teacher_id=teachers[0].id,
            block_code="WG",
            observed_at=datetime(2025, 10, 6, 17, tzinfo=UTC) + timedelta(minutes=i),
            scores={"CR": 2},
            new_steps=[NewStep(library_code="CR-1")],
        )
        try:
            record_observation(session=s, draft=draft, by=coach)
        except StepCapReached:
            refused.append(i)

    errors = _run_together(WRITERS, work)
    assert not errors, errors[0]
    session.rollback()
    open_steps = session.exec(
        select(func.count())
        .select_from(ActionStep)
        .where(ActionStep.teacher_id == teachers[0].id, ActionStep.state == "open")
    ).one()
    assert open_steps == cap
    assert len(refused) == WRITERS - cap
    saved = session.exec(select(func.count()).select_from(Observation)).one()
    assert saved == cap  # a refused save writes nothing, not even the observation
