"""Observations: the one-transaction save of the quick form (scores, revisits, new steps), edits
within the window, debriefs, acknowledgements, read views and the per-coach form draft."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from coaching import access, audit
from coaching.errors import NotFound, PermissionDenied, StepCapReached, ValidationError
from coaching.settings import get_settings
from coaching.steps import aware, check_text, library_for, open_and_mastered_steps, replay_step
from coaching.timeutil import as_utc, local_date, month_key, school_tz
from db.models import (
    RATINGS,
    ActionStep,
    Block,
    Domain,
    DomainScore,
    LibraryStep,
    Observation,
    Revisit,
    RubricVersion,
    StepEvent,
    Teacher,
    User,
    utcnow,
)
from db.models import ObservationDraft as DraftRow

CLOCK_SKEW = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
TITLE_CHARS = 80
DEBRIEF_FLAG_HOURS = 48
RATING_LABELS = {"not_yet": "Not yet", "partial": "Partial", "implemented": "Implemented"}


@dataclass
class NewStep:
    """A step to assign: from the library (`library_code`) or written by the coach (`custom_text`)."""

    library_code: str | None = None
    custom_text: str = ""
    domain_code: str = ""
    check_back_on: date | None = None


@dataclass
class ObservationDraft:
    """Everything the quick observation form submits."""

    teacher_id: int
    block_code: str
    observed_at: datetime
    duration_min: int = 15
    scores: dict[str, int | None] = field(default_factory=dict)  # domain code -> 1-4 or None
    evidence: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    notes_private: bool = False
    revisits: dict[int, str] = field(default_factory=dict)  # step id -> rating
    revisit_notes: dict[int, str] = field(default_factory=dict)
    new_steps: list[NewStep] = field(default_factory=list)
    client_token: str | None = None


@dataclass
class _Checked:
    teacher: Teacher
    block: Block
    rubric: RubricVersion
    domains: dict[str, Domain]
    observed_at: datetime
    steps: dict[int, ActionStep]
    library: dict[str, LibraryStep]


# ---------------------------------------------------------------- validation


def _current_rubric(session: Session) -> tuple[RubricVersion, dict[str, Domain]]:
    rv = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).first()  # noqa: E712
    if rv is None:
        raise ValidationError("No rubric is set up yet; ask an admin to publish one.")
    domains = session.exec(
        select(Domain)
        .where(Domain.rubric_version_id == rv.id, col(Domain.retired).is_(False))
        .order_by(Domain.position)
    ).all()
    return rv, {d.code: d for d in domains}


def _require_observer(by: User) -> None:
    access.require_role(by, "admin", "coach")


def _check(
    session: Session, draft: ObservationDraft, by: User, editing: Observation | None = None
) -> _Checked:
    """Validate the draft at the boundary; raise ValidationError saying what to fix."""
    check_text(  # first: PostgreSQL refuses NUL even in a lookup
        draft.notes,
        draft.block_code,
        *draft.evidence.values(),
        *draft.revisit_notes.values(),
        *(n.custom_text for n in draft.new_steps),
        *(n.domain_code for n in draft.new_steps),
        *(n.library_code for n in draft.new_steps),
    )
    teacher = access.get_teacher(session, by, draft.teacher_id)
    block = session.exec(select(Block).where(Block.code == (draft.block_code or ""))).first()
    if block is None:
        raise ValidationError("Pick the instructional block.", field="block")
    rubric, domains = _current_rubric(session)
    if editing is not None and editing.rubric_version_id != rubric.id:
        rubric = session.get(RubricVersion, editing.rubric_version_id)
        domains = {
            d.code: d for d in session.exec(select(Domain).where(Domain.rubric_version_id == rubric.id)).all()
        }
    for code, score in draft.scores.items():
        if code not in domains:
            raise ValidationError(f"{code!r} is not a domain of the current rubric.", field="scores")
        if score is not None and (isinstance(score, bool) or score not in (1, 2, 3, 4)):
            raise ValidationError(
                f"The score for {domains[code].name} must be 1, 2, 3 or 4 (or not observed), not {score!r}.",
                field=f"score:{code}",
            )
    for code in draft.evidence:
        if code not in domains:
            raise ValidationError(f"{code!r} is not a domain of the current rubric.", field="evidence")
    if not isinstance(draft.observed_at, datetime):
        raise ValidationError("Give the date and time of the observation.", field="observed_at")
    observed_at = as_utc(draft.observed_at)
    if observed_at > utcnow() + CLOCK_SKEW:
        raise ValidationError(
            "The observation time is in the future; pick when the lesson was seen.", field="observed_at"
        )
    if observed_at < EARLIEST:
        raise ValidationError("The observation date is before 2000; check the date.", field="observed_at")
    if not isinstance(draft.duration_min, int) or not 1 <= draft.duration_min <= 240:
        raise ValidationError("The duration must be between 1 and 240 minutes.", field="duration")

    steps: dict[int, ActionStep] = {}
    already = set()
    if editing is not None:
        already = set(session.exec(select(Revisit.step_id).where(Revisit.observation_id == editing.id)).all())
    for step_id, rating in draft.revisits.items():
        if rating not in RATINGS:
            raise ValidationError(
                "A revisit rating must be Not yet, Partial or Implemented.", field=f"revisit:{step_id}"
            )
        step = session.get(ActionStep, step_id, populate_existing=True)
        if step is None or step.teacher_id != teacher.id:
            raise ValidationError(
                "A revisited step does not belong to this teacher.", field=f"revisit:{step_id}"
            )
        if step.state not in ("open", "mastered") and step_id not in already:
            raise ValidationError(
                f"The step “{step.title}” is {step.state}; only open or mastered steps can be revisited.",
                field=f"revisit:{step_id}",
            )
        if observed_at < aware(step.assigned_at):
            raise ValidationError(
                f"The step “{step.title}” was assigned after this observation's time; it cannot be revisited here.",
                field=f"revisit:{step_id}",
            )
        steps[step_id] = step

    library: dict[str, LibraryStep] = {}
    for new in draft.new_steps:
        if new.library_code:
            entry = session.exec(select(LibraryStep).where(LibraryStep.code == new.library_code)).first()
            if entry is None or entry.status != "active":
                raise ValidationError(
                    f"The library step {new.library_code!r} does not exist or is retired.", field="new_steps"
                )
            library[entry.code] = entry
        elif not (new.custom_text or "").strip():
            raise ValidationError(
                "A new step needs a library step or the text of a custom step.", field="new_steps"
            )

    for new in draft.new_steps:
        if new.domain_code and new.domain_code not in domains:
            raise ValidationError(
                f"{new.domain_code!r} is not a domain of the current rubric.", field="new_steps"
            )
    scored = any(s is not None for s in draft.scores.values())
    if not scored and not (draft.notes or "").strip():
        raise ValidationError("Score at least one domain or write a note before saving.", field="scores")
    return _Checked(teacher, block, rubric, domains, observed_at, steps, library)


# ---------------------------------------------------------------- writing


def _lock_teacher(session: Session, teacher_id: int) -> None:
    # PostgreSQL: a row lock serialises savers of the same teacher, so the open-step cap cannot be
    # passed by two at once. SQLite: every transaction already starts with BEGIN IMMEDIATE.
    session.exec(select(Teacher.id).where(Teacher.id == teacher_id).with_for_update()).first()


def _by_token(session: Session, token: str | None) -> Observation | None:
    if not token:
        return None
    return session.exec(
        select(Observation).where(Observation.client_token == token).execution_options(populate_existing=True)
    ).first()


def _write_scores(session: Session, obs: Observation, draft: ObservationDraft, c: _Checked) -> None:
    for code, domain in c.domains.items():
        score = draft.scores.get(code)
        evidence = (draft.evidence.get(code) or "").strip()
        if score is None and not evidence:
            continue
        session.add(
            DomainScore(
                observation_id=obs.id,
                domain_id=domain.id,
                domain_code=code,
                score=score,
                evidence=evidence,
                teacher_id=obs.teacher_id,
                school_id=obs.school_id,
                grade_band=obs.grade_band,
                observer_id=obs.observer_id,
                block_id=obs.block_id,
                rubric_version_id=obs.rubric_version_id,
                observed_at=obs.observed_at,
                month=month_key(obs.observed_at),
            )
        )


def _write_revisits(session: Session, obs: Observation, draft: ObservationDraft) -> None:
    for step_id, rating in draft.revisits.items():
        session.add(
            Revisit(
                step_id=step_id,
                observation_id=obs.id,
                rating=rating,
                note=(draft.revisit_notes.get(step_id) or "").strip(),
                revisited_at=obs.observed_at,
            )
        )


def _open_steps(session: Session, teacher_id: int) -> list[ActionStep]:
    return list(
        session.exec(
            select(ActionStep)
            .where(ActionStep.teacher_id == teacher_id, ActionStep.state == "open")
            .order_by(ActionStep.assigned_at, ActionStep.id)
            .execution_options(populate_existing=True)
        ).all()
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _cap_reached(name: str, open_now: list[ActionStep], draft: ObservationDraft, cap: int) -> StepCapReached:
    """The cap error, saying what would actually get the save under the cap. `open_step_ids` are
    the steps the coach may master or drop to make room; it is empty when that cannot help."""
    # A step this save rates Partial or Not yet stays open: mastering it would contradict the
    # rating and dropping it would refuse the revisit, so it cannot make room.
    kept = {s.id for s in open_now if s.id in draft.revisits}
    new = len(draft.new_steps)
    room = max(cap - len(kept), 0)
    if new > room:
        limit = f"the limit is {_count(cap, 'open step')}"
        if kept:
            verb = "stays" if len(kept) == 1 else "stay"
            limit += f", and the {_count(len(kept), 'step')} rated in this observation {verb} open"
        if room == 0:
            return StepCapReached(
                f"No new step can be assigned to {name} now ({limit}). "
                "Remove the new steps, then save again.",
                open_step_ids=[],
            )
        return StepCapReached(
            f"At most {_count(room, 'new step')} can be assigned to {name} at once ({limit}); "
            f"this observation adds {new}. Remove at least {new - room} of them, then save again.",
            open_step_ids=[],
        )
    excess = len(open_now) + new - cap
    titles = "; ".join(f"“{s.title}”" for s in open_now)
    fix = (
        "Mark one mastered or drop it (with a reason)"
        if excess == 1
        else f"Mark {excess} of them mastered or drop them (with a reason)"
    )
    return StepCapReached(
        f"{name} already has {_count(len(open_now), 'open step')} ({titles}); with {new} more that "
        f"would exceed the limit of {cap}. {fix}, or assign fewer new steps; then save again.",
        open_step_ids=[s.id for s in open_now if s.id not in kept],
    )


def _assign_new_steps(
    session: Session, obs: Observation, draft: ObservationDraft, c: _Checked, by: User
) -> list[ActionStep]:
    if not draft.new_steps:
        return []
    open_now = _open_steps(session, obs.teacher_id)  # after this save's revisits were replayed
    cap = get_settings().open_step_cap
    if len(open_now) + len(draft.new_steps) > cap:
        raise _cap_reached(c.teacher.name, open_now, draft, cap)
    default_back = local_date(obs.observed_at) + timedelta(days=get_settings().check_back_days)
    created = []
    for new in draft.new_steps:
        entry = c.library.get(new.library_code or "")
        custom = (new.custom_text or "").strip()
        title = (
            entry.title
            if entry
            else (custom[:TITLE_CHARS].rstrip() + ("…" if len(custom) > TITLE_CHARS else ""))
        )
        step = ActionStep(
            teacher_id=obs.teacher_id,
            observation_id=obs.id,
            library_step_id=entry.id if entry else None,
            domain_code=(entry.domain_code if entry else new.domain_code) or "",
            title=title[:200],
            custom_text="" if entry else custom,
            assigned_by=by.id,
            assigned_at=obs.observed_at,
            check_back_on=new.check_back_on or default_back,
        )
        session.add(step)
        session.flush()
        session.add(
            StepEvent(step_id=step.id, at=obs.observed_at, from_state="", to_state="open", cause="assigned")
        )
        audit.record(
            session,
            by=by,
            action="create",
            entity="action_step",
            entity_id=step.id,
            detail={
                "teacher_id": obs.teacher_id,
                "observation_id": obs.id,
                "title": step.title,
                "library_code": entry.code if entry else None,
                "check_back_on": step.check_back_on,
            },
        )
        created.append(step)
    return created


def _snapshot(draft: ObservationDraft, observed_at: datetime) -> dict[str, Any]:
    return {
        "observed_at": observed_at,
        "block": draft.block_code,
        "duration_min": draft.duration_min,
        "scores": {k: v for k, v in sorted(draft.scores.items()) if v is not None},
        "evidence": {k: v.strip() for k, v in sorted(draft.evidence.items()) if v and v.strip()},
        "notes": draft.notes.strip(),
        "notes_private": draft.notes_private,
        "revisits": {str(k): v for k, v in sorted(draft.revisits.items())},
    }


def has_input(draft: ObservationDraft, *, blank: ObservationDraft) -> bool:
    """True when the form holds something beyond `blank` (the form as it opened): a score, evidence,
    notes, a revisit, a new step, or another block, time or duration. The teacher alone is not."""

    def entered(d: ObservationDraft) -> tuple:
        notes = {k: v.strip() for k, v in sorted(d.revisit_notes.items()) if v and v.strip()}
        return _snapshot(d, d.observed_at), d.new_steps, notes

    return entered(draft) != entered(blank)


def record_observation(*, session: Session, draft: ObservationDraft, by: User) -> Observation:
    """Validate and save an observation with its scores, revisits and new steps in one
    transaction; idempotent on `draft.client_token`. Raises ValidationError / StepCapReached."""
    _require_observer(by)
    token = (draft.client_token or "").strip() or None
    if token is not None and (len(token) > 80 or "\x00" in token):
        raise ValidationError("The form token is invalid; reload the page.", field="client_token")
    try:
        existing = _by_token(session, token)
        if existing is not None:
            return existing
        access.get_teacher(session, by, draft.teacher_id)
        _lock_teacher(session, draft.teacher_id)
        existing = _by_token(session, token)  # a concurrent twin may have committed while we waited
        if existing is not None:
            session.commit()  # ends the transaction (releases the lock); nothing was written
            return existing
        c = _check(session, draft, by)
        now = utcnow()
        obs = Observation(
            teacher_id=c.teacher.id,
            observer_id=by.id,
            observed_at=c.observed_at,
            block_id=c.block.id,
            rubric_version_id=c.rubric.id,
            duration_min=draft.duration_min,
            notes=(draft.notes or "").strip(),
            notes_private=bool(draft.notes_private),
            school_id=c.teacher.school_id,
            grade_band=c.teacher.grade_band,
            client_token=token,
            created_at=now,
            updated_at=now,
        )
        session.add(obs)
        session.flush()
        _write_scores(session, obs, draft, c)
        _write_revisits(session, obs, draft)
        session.flush()
        for step in c.steps.values():
            replay_step(session, step)
        session.flush()
        created = _assign_new_steps(session, obs, draft, c, by)
        detail = _snapshot(draft, c.observed_at)
        detail.update(teacher_id=c.teacher.id, new_step_ids=[s.id for s in created])
        audit.record(session, by=by, action="create", entity="observation", entity_id=obs.id, detail=detail)
        session.commit()
        return obs
    except IntegrityError:
        session.rollback()
        existing = _by_token(session, token)
        if existing is not None:
            return existing
        raise
    except BaseException:
        session.rollback()
        raise


def _editable(obs: Observation, by: User) -> bool:
    if by.role == "admin":
        return True
    window = timedelta(hours=get_settings().edit_window_hours)
    return by.id == obs.observer_id and utcnow() - aware(obs.created_at) <= window


def can_edit(*, observation: Observation, user: User) -> bool:
    """True when `user` may edit the observation now (observer within the window, or an admin)."""
    return user.role in ("admin", "coach") and _editable(observation, user)


def _draft_of(session: Session, obs: Observation) -> ObservationDraft:
    scores = session.exec(select(DomainScore).where(DomainScore.observation_id == obs.id)).all()
    revisits = session.exec(select(Revisit).where(Revisit.observation_id == obs.id)).all()
    block = session.get(Block, obs.block_id)
    return ObservationDraft(
        teacher_id=obs.teacher_id,
        block_code=block.code if block else "",
        observed_at=aware(obs.observed_at),
        duration_min=obs.duration_min,
        scores={s.domain_code: s.score for s in scores},
        evidence={s.domain_code: s.evidence for s in scores if s.evidence},
        notes=obs.notes,
        notes_private=obs.notes_private,
        revisits={r.step_id: r.rating for r in revisits},
        revisit_notes={r.step_id: r.note for r in revisits if r.note},
    )


def draft_from_observation(*, session: Session, observation_id: int, user: User) -> ObservationDraft:
    """The observation as a draft (what an edit form starts from)."""
    return _draft_of(session, access.get_observation(session, user, observation_id))


def update_observation(
    *, session: Session, observation_id: int, draft: ObservationDraft, by: User
) -> Observation:
    """Replace an observation's scores, evidence, notes and revisits (observer within the edit
    window, admin any time); replays every affected step in date order; audited with old/new."""
    _require_observer(by)
    try:
        obs = access.get_observation(session, by, observation_id)
        if not _editable(obs, by):
            hours = get_settings().edit_window_hours
            raise PermissionDenied(
                f"Only the observer can edit an observation, within {hours} hours of saving it; "
                "ask an admin for a later correction."
            )
        if draft.teacher_id != obs.teacher_id:
            raise ValidationError("An observation cannot be moved to another teacher.", field="teacher")
        _lock_teacher(session, obs.teacher_id)
        c = _check(session, draft, by, editing=obs)
        before = _draft_of(session, obs)
        old = _snapshot(before, aware(obs.observed_at))
        touched = set(before.revisits) | set(draft.revisits)

        obs.observed_at = c.observed_at
        obs.block_id = c.block.id
        obs.duration_min = draft.duration_min
        obs.notes = (draft.notes or "").strip()
        obs.notes_private = bool(draft.notes_private)
        obs.updated_at = utcnow()
        session.add(obs)
        session.exec(delete(DomainScore).where(DomainScore.observation_id == obs.id))
        session.exec(delete(Revisit).where(Revisit.observation_id == obs.id))
        session.flush()
        _write_scores(session, obs, draft, c)
        _write_revisits(session, obs, draft)
        # Steps assigned by this observation move with its time.
        for step in session.exec(select(ActionStep).where(ActionStep.observation_id == obs.id)).all():
            if aware(step.assigned_at) != c.observed_at:
                step.assigned_at = c.observed_at
                touched.add(step.id)
                session.add(step)
        session.flush()
        for step_id in sorted(touched):
            step = session.get(ActionStep, step_id)
            if step is not None:
                replay_step(session, step)
        session.flush()
        created = _assign_new_steps(session, obs, draft, c, by)
        new = _snapshot(draft, c.observed_at)
        detail = audit.changes(old, new)
        if created:
            detail["new_step_ids"] = {"old": [], "new": [s.id for s in created]}
        audit.record(session, by=by, action="update", entity="observation", entity_id=obs.id, detail=detail)
        session.commit()
        return obs
    except BaseException:
        session.rollback()
        raise


# ---------------------------------------------------------------- debrief and acknowledgement


def log_debrief(
    *, session: Session, observation_id: int, debriefed_at: datetime, notes: str, by: User
) -> Observation:
    """Record that the debrief of an observation happened (time and short notes); audited."""
    _require_observer(by)
    obs = access.get_observation(session, by, observation_id)
    check_text(notes, field="notes")
    when = as_utc(debriefed_at)
    if when < aware(obs.observed_at):
        raise ValidationError("The debrief cannot be before the observation.", field="debriefed_at")
    if when > utcnow() + CLOCK_SKEW:
        raise ValidationError("The debrief time is in the future.", field="debriefed_at")
    old = {"debriefed_at": aware(obs.debriefed_at), "debrief_notes": obs.debrief_notes}
    obs.debriefed_at = when
    obs.debrief_notes = (notes or "").strip()
    obs.updated_at = utcnow()
    session.add(obs)
    audit.record(
        session,
        by=by,
        action="update",
        entity="observation",
        entity_id=obs.id,
        detail=audit.changes(old, {"debriefed_at": when, "debrief_notes": obs.debrief_notes}),
    )
    session.commit()
    return obs


def acknowledge(*, session: Session, observation_id: int, reflection: str = "", by: User) -> Observation:
    """The observed teacher acknowledges their observation, with an optional reflection; audited."""
    access.require_role(by, "teacher")
    check_text(reflection, field="reflection")
    obs = access.get_observation(session, by, observation_id)  # a teacher sees only their own
    old = {"acknowledged_at": aware(obs.acknowledged_at), "reflection": obs.reflection}
    obs.acknowledged_at = utcnow()
    obs.reflection = (reflection or "").strip()
    session.add(obs)
    audit.record(
        session,
        by=by,
        action="update",
        entity="observation",
        entity_id=obs.id,
        detail=audit.changes(old, {"acknowledged_at": obs.acknowledged_at, "reflection": obs.reflection}),
    )
    session.commit()
    return obs


# ---------------------------------------------------------------- reading


def local_text(moment: datetime | None) -> str:
    """`moment` as school-local 'YYYY-MM-DD HH:MM' ('' for None)."""
    if moment is None:
        return ""
    return aware(moment).astimezone(school_tz()).strftime("%Y-%m-%d %H:%M")


def observation_view(*, session: Session, observation_id: int, user: User) -> dict[str, Any]:
    """One observation as the user may see it: scores with evidence, revisits, new steps, debrief;
    notes are None when `access.can_read_notes` is false."""
    obs = access.get_observation(session, user, observation_id)
    teacher = session.get(Teacher, obs.teacher_id)
    observer = session.get(User, obs.observer_id)
    block = session.get(Block, obs.block_id)
    domains = session.exec(
        select(Domain).where(Domain.rubric_version_id == obs.rubric_version_id).order_by(Domain.position)
    ).all()
    marks = {
        s.domain_code: s
        for s in session.exec(select(DomainScore).where(DomainScore.observation_id == obs.id))
    }
    scores = [
        {
            "code": d.code,
            "domain": d.name,
            "score": marks[d.code].score if d.code in marks else None,
            "evidence": marks[d.code].evidence if d.code in marks else "",
        }
        for d in domains
        if d.code in marks or not d.retired
    ]
    numeric = [s["score"] for s in scores if s["score"] is not None]
    revisits = session.exec(
        select(Revisit, ActionStep.title, ActionStep.state)
        .join(ActionStep, ActionStep.id == Revisit.step_id)
        .where(Revisit.observation_id == obs.id)
        .order_by(Revisit.id)
    ).all()
    new_steps = session.exec(
        select(ActionStep).where(ActionStep.observation_id == obs.id).order_by(ActionStep.id)
    ).all()
    readable = access.can_read_notes(user, obs)
    debriefed = aware(obs.debriefed_at)
    flagged = debriefed is None and utcnow() - aware(obs.observed_at) > timedelta(hours=DEBRIEF_FLAG_HOURS)
    return {
        "id": obs.id,
        "teacher_id": obs.teacher_id,
        "teacher": teacher.name if teacher else "",
        "observer_id": obs.observer_id,
        "observer": observer.display_name if observer else "",
        "observed_at": aware(obs.observed_at),
        "observed_at_local": local_text(obs.observed_at),
        "block": block.name if block else "",
        "block_code": block.code if block else "",
        "duration_min": obs.duration_min,
        "scores": scores,
        "score": round(sum(numeric) / len(numeric), 2) if numeric else None,
        "notes": obs.notes if readable else None,
        "notes_private": obs.notes_private,
        "notes_hidden": not readable,
        "revisits": [
            {
                "step_id": r.step_id,
                "title": title,
                "rating": r.rating,
                "rating_label": RATING_LABELS[r.rating],
                "note": r.note if readable else "",
                "state_now": state,
            }
            for r, title, state in revisits
        ],
        "new_steps": [
            {"id": s.id, "title": s.title, "state": s.state, "check_back_on": s.check_back_on}
            for s in new_steps
        ],
        "debriefed_at": debriefed,
        "debriefed_at_local": local_text(debriefed),
        "debrief_notes": obs.debrief_notes if readable else None,
        "debrief_flagged": flagged,
        "acknowledged_at": aware(obs.acknowledged_at),
        "reflection": obs.reflection if readable else None,
        "can_edit": can_edit(observation=obs, user=user),
    }


def list_observations(
    *, session: Session, user: User, teacher_id: int | None = None, limit: int = 200
) -> list[dict]:
    """The observations the user may see, newest first (optionally of one teacher)."""
    stmt = (
        select(
            Observation.id,
            Observation.observed_at,
            Observation.teacher_id,
            Teacher.name,
            User.display_name,
            Observation.debriefed_at,
            Observation.acknowledged_at,
        )
        .join(Teacher, Teacher.id == Observation.teacher_id)
        .join(User, User.id == Observation.observer_id)
        .where(access.observation_clause(session, user))
    )
    if teacher_id is not None:
        stmt = stmt.where(Observation.teacher_id == teacher_id)
    rows = session.exec(
        stmt.order_by(Observation.observed_at.desc(), Observation.id.desc()).limit(limit)
    ).all()
    ids = [r[0] for r in rows]
    means = dict(
        session.exec(
            select(DomainScore.observation_id, func.avg(DomainScore.score))
            .where(col(DomainScore.observation_id).in_(ids or [-1]))
            .group_by(DomainScore.observation_id)
        ).all()
    )
    return [
        {
            "id": oid,
            "observed_at": aware(at),
            "observed_at_local": local_text(at),
            "teacher_id": tid,
            "teacher": tname,
            "observer": oname,
            "score": None if means.get(oid) is None else round(float(means[oid]), 2),
            "debriefed": deb is not None,
            "acknowledged": ack is not None,
            "label": f"{local_text(at)} · {tname} · by {oname}",
        }
        for oid, at, tid, tname, oname, deb, ack in rows
    ]


def domain_priority(scores: dict[str, int | None], domain_codes: list[str]) -> list[str]:
    """Domain codes with the lowest scores first, then the unscored ones in rubric order."""
    scored = sorted((s, i, c) for i, c in enumerate(domain_codes) if (s := scores.get(c)) is not None)
    rest = [c for c in domain_codes if scores.get(c) is None]
    return [c for _, _, c in scored] + rest


def observe_context(
    *,
    session: Session,
    user: User,
    teacher_id: int | None = None,
    scores: dict[str, int | None] | None = None,
) -> dict[str, Any]:
    """What the quick observation form needs: teachers (caseload first), blocks, domains, the
    chosen teacher's open and mastered steps, and the library with the lowest-scoring domains first."""
    _require_observer(user)
    teachers = access.visible_teachers(session, user)
    teachers.sort(key=lambda t: (t.coach_id != user.id, t.name))
    mine = user.role == "coach"  # only a coach has a caseload to put first
    blocks = session.exec(select(Block).where(Block.active == True).order_by(Block.position)).all()  # noqa: E712
    _, domains = _current_rubric(session)
    steps: list[dict] = []
    if teacher_id is not None and any(t.id == teacher_id for t in teachers):
        steps = open_and_mastered_steps(session=session, user=user, teacher_id=teacher_id)
    order = domain_priority(scores or {}, list(domains))
    library = library_for(session=session, domain_codes_order=order)
    return {
        "teachers": [
            {
                "id": t.id,
                "label": t.name + (" (not in your caseload)" if mine and t.coach_id != user.id else ""),
            }
            for t in teachers
        ],
        "blocks": [{"code": b.code, "name": b.name} for b in blocks],
        "domains": [{"code": d.code, "name": d.name} for d in domains.values()],
        "steps": steps,
        "library": [{"code": e.code, "domain_code": e.domain_code, "title": e.title} for e in library],
        "check_back_days": get_settings().check_back_days,
    }


def observation_summary_html(*, session: Session, observation_id: int, user: User) -> str:
    """A self-contained one-page HTML summary of an observation, for printing."""
    v = observation_view(session=session, observation_id=observation_id, user=user)
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(s['domain'])}</td><td>{'' if s['score'] is None else s['score']}</td>"
        f"<td>{e(s['evidence'])}</td></tr>"
        for s in v["scores"]
        if s["score"] is not None or s["evidence"]
    )
    revisits = "".join(f"<li>{e(r['title'])}: {e(r['rating_label'])}</li>" for r in v["revisits"])
    steps = "".join(f"<li>{e(s['title'])} (check back by {s['check_back_on']})</li>" for s in v["new_steps"])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Observation {v['id']} - {e(v['teacher'])}</title>",
        "<style>body{font-family:sans-serif;max-width:48em;margin:1em auto;font-size:11pt}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:3px 6px;"
        "text-align:left;vertical-align:top}@media print{body{margin:0}}</style></head><body>",
        f"<h1>Observation of {e(v['teacher'])}</h1>",
        f"<p>{e(v['observed_at_local'])} · {e(v['block'])} · {v['duration_min']} min · observed by "
        f"{e(v['observer'])}</p>",
        f"<h2>Scores</h2><table><tr><th>Domain</th><th>Score</th><th>Evidence</th></tr>{rows}</table>",
        "<p>Scale: 1 Beginning, 2 Developing, 3 Proficient, 4 Exemplary.</p>",
    ]
    if revisits:
        parts.append(f"<h2>Action steps revisited</h2><ul>{revisits}</ul>")
    if steps:
        parts.append(f"<h2>New action steps</h2><ul>{steps}</ul>")
    if v["notes"]:
        parts.append(f"<h2>Notes</h2><p>{e(v['notes'])}</p>")
    if v["debriefed_at"]:
        parts.append(f"<h2>Debrief ({e(v['debriefed_at_local'])})</h2><p>{e(v['debrief_notes'] or '')}</p>")
    if v["reflection"]:
        parts.append(f"<h2>Teacher reflection</h2><p>{e(v['reflection'])}</p>")
    parts.append("</body></html>")
    return "".join(parts)


# ---------------------------------------------------------------- drafts
# Drafts are autosaved form state, written on every change; they are not audited (the audit log
# would fill with keystrokes and copies of unsaved notes). The saved observation is audited.


def save_draft(*, session: Session, by: User, payload: dict) -> None:
    """Store the coach's in-progress observation form (one draft per coach)."""
    text = json.dumps(payload, default=str, sort_keys=True)
    row = session.get(DraftRow, by.id)
    if row is None:
        row = DraftRow(user_id=by.id, payload=text)
    elif row.payload == text:
        return
    row.payload = text
    row.updated_at = utcnow()
    session.add(row)
    session.commit()


def load_draft(*, session: Session, by: User) -> dict | None:
    """The coach's saved form draft, or None."""
    row = session.get(DraftRow, by.id)
    if row is None:
        return None
    try:
        payload = json.loads(row.payload)
    except ValueError:
        return None
    if isinstance(payload, dict):
        payload.setdefault("_saved_at", local_text(row.updated_at))
    return payload if isinstance(payload, dict) else None


def clear_draft(*, session: Session, by: User) -> None:
    """Forget the coach's form draft (after a successful save)."""
    session.exec(delete(DraftRow).where(DraftRow.user_id == by.id))
    session.commit()


def get_observation_or_none(*, session: Session, user: User, observation_id: int) -> Observation | None:
    """The observation if visible to `user`, else None."""
    try:
        return access.get_observation(session, user, observation_id)
    except NotFound:
        return None
