"""Every table Coachloop stores. Times are timezone-aware UTC; dates are school-local calendar dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

ROLES = ("admin", "leader", "coach", "teacher")
STEP_STATES = ("open", "mastered", "sustained", "dropped")
RATINGS = ("not_yet", "partial", "implemented")


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class School(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200, unique=True)
    enrolment: int = 0


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True, index=True)
    display_name: str = Field(max_length=200)
    email: str = Field(default="", max_length=254)
    role: str = Field(max_length=16)
    password_hash: str | None = Field(default=None, max_length=200)
    failed_logins: int = 0
    locked: bool = False
    active: bool = True
    must_change_password: bool = False
    is_demo: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class UserSchool(SQLModel, table=True):
    """The schools a leader or coach belongs to."""

    __tablename__ = "user_school"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    school_id: int = Field(foreign_key="school.id", primary_key=True, ondelete="CASCADE")


class Teacher(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    email: str = Field(default="", max_length=254)
    school_id: int = Field(foreign_key="school.id", index=True)
    grade_band: str = Field(max_length=32)
    subject: str = Field(default="", max_length=80)
    coach_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="app_user.id", unique=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class RubricVersion(SQLModel, table=True):
    __tablename__ = "rubric_version"

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(unique=True)
    name: str = Field(max_length=200)
    is_current: bool = False
    published_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Domain(SQLModel, table=True):
    """A rubric domain within one rubric version; `code` is stable across versions."""

    __table_args__ = (UniqueConstraint("rubric_version_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    rubric_version_id: int = Field(foreign_key="rubric_version.id", index=True)
    code: str = Field(max_length=16, index=True)
    name: str = Field(max_length=120)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    look_fors: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # JSON list
    position: int = 0
    retired: bool = False


class Block(SQLModel, table=True):
    """An instructional block: when in the day a lesson segment happens."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=120)
    position: int = 0
    active: bool = True


class Observation(SQLModel, table=True):
    __table_args__ = (Index("ix_observation_teacher_time", "teacher_id", "observed_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    teacher_id: int = Field(foreign_key="teacher.id")
    observer_id: int = Field(foreign_key="app_user.id", index=True)
    observed_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    block_id: int = Field(foreign_key="block.id")
    rubric_version_id: int = Field(foreign_key="rubric_version.id")
    duration_min: int = 15
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    notes_private: bool = False  # private to coach and teacher: leaders never see the notes
    # Frozen at save time so history does not drift when a teacher moves school or grade.
    school_id: int = Field(foreign_key="school.id", index=True)
    grade_band: str = Field(max_length=32)
    debriefed_at: datetime | None = Field(default=None, sa_column=_ts())
    debrief_notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    acknowledged_at: datetime | None = Field(default=None, sa_column=_ts())
    reflection: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    client_token: str | None = Field(default=None, max_length=80, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class DomainScore(SQLModel, table=True):
    """One domain mark on one observation. Dimensions are copied from the observation so that
    heatmap aggregates are one GROUP BY over this table with covering indexes."""

    __tablename__ = "domain_score"
    __table_args__ = (
        UniqueConstraint("observation_id", "domain_code"),
        Index("ix_score_school_domain", "school_id", "domain_code", "month", "score"),
        Index("ix_score_block_domain", "block_id", "domain_code", "month", "score"),
        Index("ix_score_month_domain", "month", "domain_code", "score"),
        Index("ix_score_teacher_domain", "teacher_id", "domain_code", "month", "score"),
        Index("ix_score_observer_domain", "observer_id", "domain_code", "month", "score"),
        Index("ix_score_grade_domain", "grade_band", "domain_code", "month", "score"),
        Index("ix_score_school_teacher_domain", "school_id", "teacher_id", "domain_code", "month", "score"),
        Index("ix_score_time", "observed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    observation_id: int = Field(foreign_key="observation.id", index=True, ondelete="CASCADE")
    domain_id: int = Field(foreign_key="domain.id")
    domain_code: str = Field(max_length=16)
    score: int | None = None  # 1-4; NULL = not observed
    evidence: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    teacher_id: int
    school_id: int
    grade_band: str = Field(max_length=32)
    observer_id: int
    block_id: int
    rubric_version_id: int
    observed_at: datetime = Field(sa_column=_ts(nullable=False))
    month: str = Field(max_length=7)  # YYYY-MM in the school's timezone


class LibraryStep(SQLModel, table=True):
    """A named teacher move in the action-step library."""

    __tablename__ = "library_step"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    domain_code: str = Field(max_length=16, index=True)
    title: str = Field(max_length=200)
    move: str = Field(sa_column=Column(Text, nullable=False))
    look_for: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="active", max_length=16)  # active / proposed / retired
    proposed_by: int | None = Field(default=None, foreign_key="app_user.id")


class ActionStep(SQLModel, table=True):
    """An action step assigned to a teacher; its state is replayed from revisits."""

    __tablename__ = "action_step"
    __table_args__ = (Index("ix_step_teacher_state", "teacher_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    teacher_id: int = Field(foreign_key="teacher.id")
    observation_id: int | None = Field(default=None, foreign_key="observation.id", index=True)
    library_step_id: int | None = Field(default=None, foreign_key="library_step.id")
    domain_code: str = Field(default="", max_length=16)
    title: str = Field(max_length=200)
    custom_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    assigned_by: int = Field(foreign_key="app_user.id")
    assigned_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    check_back_on: date
    state: str = Field(default="open", max_length=16)
    mastered_at: datetime | None = Field(default=None, sa_column=_ts())
    sustained_at: datetime | None = Field(default=None, sa_column=_ts())
    dropped_at: datetime | None = Field(default=None, sa_column=_ts())
    drop_reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class StepEvent(SQLModel, table=True):
    """History of state changes of an action step (kept when a replay clears mastered_at)."""

    __tablename__ = "step_event"

    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="action_step.id", index=True, ondelete="CASCADE")
    at: datetime = Field(sa_column=_ts(nullable=False))
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    cause: str = Field(default="", max_length=200)


class Revisit(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("step_id", "observation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="action_step.id", index=True, ondelete="CASCADE")
    observation_id: int = Field(foreign_key="observation.id", index=True, ondelete="CASCADE")
    rating: str = Field(max_length=16)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    revisited_at: datetime = Field(sa_column=_ts(nullable=False, index=True))


class CoachingGoal(SQLModel, table=True):
    __tablename__ = "coaching_goal"

    id: int | None = Field(default=None, primary_key=True)
    teacher_id: int = Field(foreign_key="teacher.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    domain_code: str = Field(default="", max_length=16)
    set_by: int | None = Field(default=None, foreign_key="app_user.id")
    set_on: date
    closed_on: date | None = None


class AuditLog(SQLModel, table=True):
    """Every create/update/delete: who, what, when (with old and new values where useful)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, index=True))
    user_id: int | None = Field(default=None, index=True)
    username: str = Field(default="system", max_length=80)
    action: str = Field(max_length=32)  # create / update / delete / login / ...
    entity: str = Field(max_length=40, index=True)
    entity_id: str | None = Field(default=None, max_length=40)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))  # JSON


class AppSetting(SQLModel, table=True):
    """Key/value settings kept in the database so every app process shares them."""

    __tablename__ = "app_setting"

    key: str = Field(primary_key=True, max_length=80)
    value: str = Field(sa_column=Column(Text, nullable=False))


class Brief(SQLModel, table=True):
    """A saved pre-debrief prep brief."""

    id: int | None = Field(default=None, primary_key=True)
    teacher_id: int = Field(foreign_key="teacher.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    records_hash: str = Field(max_length=64)  # hash of the time-independent facts
    prompt_hash: str = Field(default="", max_length=64)
    facts_json: str = Field(sa_column=Column(Text, nullable=False))
    prompt_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    source: str = Field(max_length=16)  # llm / offline
    offline_reason: str = Field(default="", max_length=300)
    model: str = Field(default="", max_length=120)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    text: str = Field(sa_column=Column(Text, nullable=False))
    grounding_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))


class ObservationDraft(SQLModel, table=True):
    """An in-progress observation form per coach, so a reload loses nothing."""

    __tablename__ = "observation_draft"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class ImportBatch(SQLModel, table=True):
    """A completed CSV/XLSX import (its file hash makes re-imports a no-op)."""

    __tablename__ = "import_batch"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    file_hash: str = Field(max_length=64, index=True)
    filename: str = Field(default="", max_length=300)
    rows: int = 0
    created: int = 0
    by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
