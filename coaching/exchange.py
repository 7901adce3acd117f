"""Export every table to a folder of CSV files (with a data dictionary), and restore such a folder
into an empty database so that nothing is lost: same ids, same metrics, same step states.

Times are written as ISO 8601 in UTC with their offset; dates as YYYY-MM-DD; booleans as
true/false; a blank cell is NULL (or an empty text where the column cannot be NULL). Password
hashes leave the database only with `with_credentials=True` (backups); secrets kept in
`app_setting` (cookie key, setup code) never do.
"""

from __future__ import annotations

import csv
import logging
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Table, delete, func, insert, select, text
from sqlmodel import Session, SQLModel

import db  # noqa: F401 - every model registered in the metadata
from coaching import audit
from coaching.errors import CoachloopError
from db.models import Block, Domain, Observation, RubricVersion, Teacher, User

log = logging.getLogger(__name__)

# table name -> file name (tables added later are exported as <table>.csv)
FILES = {
    "school": "schools.csv",
    "app_user": "users.csv",
    "user_school": "user_schools.csv",
    "teacher": "teachers.csv",
    "rubric_version": "rubric_versions.csv",
    "domain": "domains.csv",
    "block": "blocks.csv",
    "observation": "observations.csv",
    "domain_score": "scores.csv",
    "library_step": "library.csv",
    "action_step": "action_steps.csv",
    "step_event": "step_events.csv",
    "revisit": "revisits.csv",
    "coaching_goal": "goals.csv",
    "app_setting": "settings.csv",
    "brief": "briefs.csv",
    "audit_log": "audit_log.csv",
    "observation_draft": "observation_drafts.csv",
    "import_batch": "import_batches.csv",
}
SECRET_SETTING = re.compile(r"cookie|secret|password|setup_code|api_key|token", re.IGNORECASE)
CREDENTIAL_COLUMNS = {"app_user": {"password_hash"}}
# Readable extras next to the ids (ignored on restore).
DERIVED = {
    "observation": ["observer", "block", "rubric_version"],
    "domain_score": ["domain_name"],
}

COLUMN_DOCS = {
    "id": "Row id; other files refer to it as <thing>_id.",
    "created_at": "When the row was created (ISO 8601, UTC).",
    "updated_at": "When the row was last changed (ISO 8601, UTC).",
    "teacher_id": "The teacher (teachers.csv id).",
    "school_id": "The school (schools.csv id).",
    "user_id": "A user account (users.csv id).",
    "observation_id": "The observation (observations.csv id).",
    "step_id": "The assigned action step (action_steps.csv id).",
    "observer_id": "The user who observed (users.csv id).",
    "block_id": "The instructional block (blocks.csv id).",
    "rubric_version_id": "The rubric version (rubric_versions.csv id).",
    "domain_id": "The rubric domain (domains.csv id).",
    "domain_code": "Short rubric domain code, stable across rubric versions (domains.csv code).",
    "grade_band": "Grade band, e.g. K-2, 3-5, 6-8.",
    "code": "Short stable code.",
    "name": "Name shown in the app.",
    "email": "E-mail address (may be blank).",
    "active": "true while in use; false when archived.",
    "position": "Display order.",
    "school.enrolment": "Number of students enrolled.",
    "app_user.username": "Sign-in name.",
    "app_user.display_name": "Name shown in the app.",
    "app_user.role": "admin, leader, coach or teacher.",
    "app_user.password_hash": "bcrypt hash of the password (only in exports made with --with-credentials).",
    "app_user.failed_logins": "Failed sign-ins since the last success.",
    "app_user.locked": "true when sign-in is locked after failed attempts.",
    "app_user.must_change_password": "true when the user must set a new password at next sign-in.",
    "app_user.is_demo": "true for demo accounts (public demo password).",
    "teacher.subject": "Main subject taught.",
    "teacher.coach_id": "The teacher's primary coach (users.csv id).",
    "teacher.user_id": "The teacher's own login, if any (users.csv id).",
    "rubric_version.version": "Version number of the rubric.",
    "rubric_version.is_current": "true for the rubric new observations use.",
    "rubric_version.published_at": "When the version was published (ISO 8601, UTC).",
    "domain.description": "What the domain is about.",
    "domain.look_fors": "JSON list of observable look-fors.",
    "domain.retired": "true when the domain is no longer scored.",
    "observation.observed_at": "When the lesson segment was observed (ISO 8601, UTC).",
    "observation.duration_min": "Length of the observed segment in minutes.",
    "observation.notes": "The observer's notes (may name students: handle as confidential).",
    "observation.notes_private": "true when notes are private to coach and teacher.",
    "observation.school_id": "The teacher's school when observed (frozen; schools.csv id).",
    "observation.grade_band": "The teacher's grade band when observed (frozen).",
    "observation.debriefed_at": "When the debrief was logged (blank: no debrief yet).",
    "observation.debrief_notes": "Notes from the debrief.",
    "observation.acknowledged_at": "When the teacher acknowledged the feedback.",
    "observation.reflection": "The teacher's reflection.",
    "observation.client_token": "Form token that makes a double submit save once.",
    "observation.observer": "Username of the observer (derived; ignored on restore).",
    "observation.block": "Block code (derived; ignored on restore).",
    "observation.rubric_version": "Rubric version number (derived; ignored on restore).",
    "domain_score.score": "1 Beginning, 2 Developing, 3 Proficient, 4 Exemplary; blank = not observed.",
    "domain_score.evidence": "Evidence written for the mark.",
    "domain_score.teacher_id": "Frozen copy of the observation's teacher.",
    "domain_score.school_id": "Frozen copy of the observation's school.",
    "domain_score.observer_id": "Frozen copy of the observation's observer.",
    "domain_score.block_id": "Frozen copy of the observation's block.",
    "domain_score.rubric_version_id": "Frozen copy of the observation's rubric version.",
    "domain_score.observed_at": "Frozen copy of the observation's time (ISO 8601, UTC).",
    "domain_score.month": "YYYY-MM of the observation in the school's timezone.",
    "domain_score.domain_name": "Domain name (derived; ignored on restore).",
    "library_step.title": "Name of the move.",
    "library_step.move": "What the teacher does.",
    "library_step.look_for": "What an observer sees when the move is in place.",
    "library_step.status": "active, proposed or retired.",
    "library_step.proposed_by": "User who proposed the entry (users.csv id).",
    "action_step.library_step_id": "The library entry (library.csv id); blank for a custom step.",
    "action_step.title": "Title of the step.",
    "action_step.custom_text": "Text of a custom step.",
    "action_step.assigned_by": "User who assigned the step (users.csv id).",
    "action_step.assigned_at": "When the step was assigned (ISO 8601, UTC).",
    "action_step.check_back_on": "School-local date to check back on the step.",
    "action_step.state": "open, mastered, sustained or dropped (replayed from revisits).",
    "action_step.mastered_at": "When the step was last mastered (blank if not mastered).",
    "action_step.sustained_at": "When the step was sustained.",
    "action_step.dropped_at": "When the step was dropped.",
    "action_step.drop_reason": "Why the step was dropped.",
    "step_event.at": "When the state changed (ISO 8601, UTC).",
    "step_event.from_state": "State before the change.",
    "step_event.to_state": "State after the change.",
    "step_event.cause": "What caused the change.",
    "revisit.rating": "not_yet, partial or implemented.",
    "revisit.note": "Observer's note on the revisit.",
    "revisit.revisited_at": "The revisiting observation's time (ISO 8601, UTC).",
    "coaching_goal.text": "The coaching goal.",
    "coaching_goal.set_by": "User who set the goal (users.csv id).",
    "coaching_goal.set_on": "School-local date the goal was set.",
    "coaching_goal.closed_on": "School-local date the goal was closed (blank while active).",
    "app_setting.key": "Setting name (secrets such as the cookie key are never exported).",
    "app_setting.value": "Setting value.",
    "audit_log.at": "When it happened (ISO 8601, UTC).",
    "audit_log.username": "Who did it (system for automatic work).",
    "audit_log.action": "create, update, delete, login, ...",
    "audit_log.entity": "Kind of record changed.",
    "audit_log.entity_id": "Id of the record changed.",
    "audit_log.detail": "JSON details (secrets redacted).",
    "brief.created_by": "User who generated the brief (users.csv id).",
    "brief.records_hash": "Hash of the facts the brief was built from.",
    "brief.prompt_hash": "Hash of the prompt sent.",
    "brief.facts_json": "The facts as JSON.",
    "brief.prompt_text": "The scrubbed prompt text sent to the model.",
    "brief.source": "llm or offline.",
    "brief.offline_reason": "Why the offline brief was used.",
    "brief.model": "Model name.",
    "brief.prompt_tokens": "Prompt tokens reported by the model server.",
    "brief.completion_tokens": "Completion tokens reported by the model server.",
    "brief.latency_ms": "Time the model took, in milliseconds.",
    "brief.text": "The brief.",
    "brief.grounding_json": "JSON list tracing each figure to an observation.",
    "observation_draft.payload": "The in-progress form as JSON.",
    "import_batch.kind": "What was imported.",
    "import_batch.file_hash": "SHA-256 of the imported file.",
    "import_batch.filename": "Name of the imported file.",
    "import_batch.rows": "Rows in the file.",
    "import_batch.created": "Rows created.",
    "import_batch.by_user_id": "User who imported (users.csv id).",
    "import_batch.at": "When it was imported (ISO 8601, UTC).",
}


def _tables() -> list[Table]:
    return [t for t in SQLModel.metadata.sorted_tables if t.name != "alembic_version"]


def file_name(table: Table) -> str:
    """The CSV file name of a table."""
    return FILES.get(table.name, f"{table.name}.csv")


def _utc(moment: datetime) -> datetime:
    # SQLite returns stored UTC times naive.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _columns(table: Table, with_credentials: bool) -> list[str]:
    hidden = set() if with_credentials else CREDENTIAL_COLUMNS.get(table.name, set())
    return [c.name for c in table.columns if c.name not in hidden] + DERIVED.get(table.name, [])


def _derived_lookups(session: Session) -> dict[str, dict]:
    return {
        "observer": dict(session.execute(select(User.id, User.username)).all()),
        "block": dict(session.execute(select(Block.id, Block.code)).all()),
        "rubric_version": dict(session.execute(select(RubricVersion.id, RubricVersion.version)).all()),
        "domain_name": dict(session.execute(select(Domain.id, Domain.name)).all()),
    }


def _describe_type(column) -> str:
    kind = column.type
    if isinstance(kind, DateTime):
        name = "timestamp (ISO 8601 with offset, UTC)"
    elif isinstance(kind, Date):
        name = "date (YYYY-MM-DD)"
    elif isinstance(kind, Boolean):
        name = "boolean (true/false)"
    elif isinstance(kind, Integer):
        name = "integer"
    elif isinstance(kind, Float):
        name = "number"
    else:
        name = "text"
    return name + (", may be blank" if column.nullable else "")


def _data_dictionary(with_credentials: bool) -> str:
    lines = [
        "# Coachloop export: data dictionary",
        "",
        "One CSV file per table, UTF-8, with a header row. Ids let you join the files (for example",
        "`scores.csv` observation_id -> `observations.csv` id). Times are ISO 8601 in UTC with their",
        "offset; dates are school-local calendar dates. A blank cell means no value.",
        "Observation notes can name students: treat the export as confidential.",
        "",
        "Password hashes are included only in exports made with `--with-credentials`;"
        " secrets (cookie key, setup code) are never exported.",
        "",
    ]
    for table in _tables():
        lines += [
            f"## {file_name(table)}",
            "",
            f"Table `{table.name}`.",
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        for col in _columns(table, with_credentials):
            if col in table.c:
                kind = _describe_type(table.c[col])
            else:
                kind = "text (derived)"
            doc = (
                COLUMN_DOCS.get(f"{table.name}.{col}")
                or COLUMN_DOCS.get(col)
                or col.replace("_", " ").capitalize() + "."
            )
            lines.append(f"| {col} | {kind} | {doc} |")
        lines.append("")
    return "\n".join(lines)


def export_dir(*, session: Session, out_dir: Path, with_credentials: bool = False) -> list[Path]:
    """Write one CSV per table plus data_dictionary.md into `out_dir`; return the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lookups = _derived_lookups(session)
    written = []
    for table in _tables():
        columns = _columns(table, with_credentials)
        path = out_dir / file_name(table)
        order = [c for c in table.primary_key.columns]
        rows = session.execute(select(table).order_by(*order)).mappings().all()
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for row in rows:
                if table.name == "app_setting" and SECRET_SETTING.search(row["key"]):
                    continue
                out = []
                for col in columns:
                    if col in table.c:
                        out.append(_cell(row[col]))
                    elif col == "observer":
                        out.append(_cell(lookups["observer"].get(row["observer_id"])))
                    elif col == "block":
                        out.append(_cell(lookups["block"].get(row["block_id"])))
                    elif col == "rubric_version":
                        out.append(_cell(lookups["rubric_version"].get(row["rubric_version_id"])))
                    elif col == "domain_name":
                        out.append(_cell(lookups["domain_name"].get(row["domain_id"])))
                writer.writerow(out)
        written.append(path)
    dictionary = out_dir / "data_dictionary.md"
    dictionary.write_text(_data_dictionary(with_credentials), encoding="utf-8")
    written.append(dictionary)
    log.info("Exported %d files to %s", len(written), out_dir)
    return written


def _parse(column, raw: str) -> Any:
    if raw == "":
        if column.nullable:
            return None
        if isinstance(column.type, (Integer, Float, Boolean, Date, DateTime)):
            raise CoachloopError(f"Column {column.table.name}.{column.name} is blank but needs a value.")
        return ""
    kind = column.type
    try:
        if isinstance(kind, DateTime):
            return _utc(datetime.fromisoformat(raw))
        if isinstance(kind, Date):
            return date.fromisoformat(raw)
        if isinstance(kind, Boolean):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        if isinstance(kind, Integer):
            return int(raw)
        if isinstance(kind, Float):
            return float(raw)
    except ValueError:
        raise CoachloopError(
            f"{file_name(column.table)}: {raw!r} is not a valid value for {column.name}."
        ) from None
    return raw


def wipe_all(*, session: Session) -> None:
    """Delete every data row of every table (alembic_version is kept); PostgreSQL id sequences
    restart at 1 so that a re-seed gives the same ids. Does not commit."""
    if session.get_bind().dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in _tables())
        session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    for table in reversed(_tables()):
        session.execute(delete(table))


def reset_sequences(*, session: Session) -> None:
    """PostgreSQL: move every id sequence past the largest id (after inserts with explicit ids)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in _tables():
        if "id" in table.c and table.c.id.primary_key:
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                )
            )


def _is_empty(session: Session) -> bool:
    return not any(
        session.execute(select(func.count()).select_from(m)).scalar() for m in (User, Teacher, Observation)
    )


def restore_dir(*, session: Session, in_dir: Path) -> dict[str, int]:
    """Load an export folder into an empty database (no users, teachers or observations), keeping
    every id, in one transaction; return {file name: rows loaded}. Users exported without a hash
    must set a new password."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise CoachloopError(f"{in_dir} is not a folder.")
    if not (in_dir / FILES["app_user"]).exists() or not (in_dir / FILES["observation"]).exists():
        raise CoachloopError(
            f"{in_dir} does not look like a Coachloop export (users.csv or observations.csv missing)."
        )
    if not _is_empty(session):
        raise CoachloopError(
            "The database already has users, teachers or observations; restore only into an empty database."
        )
    loaded: dict[str, int] = {}
    try:
        # Only reference data (rubric, library, settings) can be here: the export replaces it.
        wipe_all(session=session)
        for table in _tables():
            path = in_dir / file_name(table)
            if not path.exists():
                continue
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                columns = [c for c in table.columns if c.name in (reader.fieldnames or [])]
                rows = []
                for raw in reader:
                    row = {c.name: _parse(c, raw[c.name]) for c in columns}
                    if table.name == "app_user" and not row.get("password_hash"):
                        row["password_hash"] = None
                        row["must_change_password"] = True
                    rows.append(row)
            for start in range(0, len(rows), 5000):
                session.execute(insert(table), rows[start : start + 5000])
            loaded[path.name] = len(rows)
        reset_sequences(session=session)
        audit.record(
            session, by=None, action="restore", entity="database", detail={"from": str(in_dir), **loaded}
        )
        session.commit()
    except CoachloopError:
        session.rollback()
        raise
    except Exception as exc:
        session.rollback()
        raise CoachloopError(
            f"The export in {in_dir} could not be restored: {str(exc).splitlines()[0]}"
        ) from exc
    log.info("Restored %s", loaded)
    return loaded
