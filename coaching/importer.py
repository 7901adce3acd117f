"""CSV/XLSX import of a roster and of observation spreadsheets: read, map headers, dry-run, apply.

The flow is always: `read_table` -> `propose_mapping` (the user may override it) -> `plan_import`
(a dry run listing, per spreadsheet row, what will be created and every problem) ->
`apply_import` (all-or-nothing, idempotent, audited). Row numbers are spreadsheet rows: the
header is row 1, the first data row is row 2, and blank rows keep their numbers.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert
from sqlmodel import Session, select

from coaching import access, audit
from coaching.errors import CoachloopError, ValidationError
from coaching.settings import get_settings
from coaching.timeutil import as_utc, local_date, month_key, school_tz
from db.models import (
    ActionStep,
    Block,
    Domain,
    DomainScore,
    ImportBatch,
    LibraryStep,
    Observation,
    RubricVersion,
    School,
    StepEvent,
    Teacher,
    User,
    UserSchool,
)

log = logging.getLogger(__name__)

KINDS = ("roster", "observations")
IGNORE = "ignore"
TITLE_CHARS = 80  # a custom step's title is its first words, as on the observation form
NOT_OBSERVED = {"n/a", "na", "not observed", "no", "-", "--", "x", "not scored", "ns"}

# Field -> header spellings (normalised with `_key`), per kind of file.
FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "roster": {
        "teacher": ("teacher", "teacher name", "name", "full name", "teacher full name", "staff", "educator"),
        "email": ("email", "teacher email", "e mail", "email address"),
        "school": ("school", "school name", "campus", "site", "building"),
        "grade": ("grade", "grade band", "grades", "grade level", "band"),
        "subject": ("subject", "content area", "content", "course"),
        "coach": ("coach", "coach username", "assigned coach", "instructional coach", "coach name"),
    },
    "observations": {
        "date": (
            "date",
            "observed",
            "observed at",
            "observation date",
            "date observed",
            "timestamp",
            "when",
            "visit date",
            "date of observation",
        ),
        "teacher": ("teacher", "teacher name", "teacher observed", "educator", "staff"),
        "observer": ("observer", "coach", "observed by", "observer name", "observer username"),
        "block": ("block", "instructional block", "segment", "lesson segment", "time of day"),
        "notes": ("notes", "note", "comments", "comment", "evidence", "feedback", "observation notes"),
        "step": ("action step", "action steps", "step", "next step", "action step text", "next steps"),
        "school": ("school", "school name", "campus", "site"),  # only to tell same-named teachers apart
    },
}
REQUIRED = {"roster": ("teacher", "school", "grade"), "observations": ("date", "teacher", "observer")}


# --------------------------------------------------------------------------------------------
# Reading


def read_table(source: str | Path | bytes, filename: str | None = None) -> pd.DataFrame:
    """Read a .csv or .xlsx into a DataFrame of stripped strings, indexed by spreadsheet row number
    (header = row 1); fully blank rows are dropped but the others keep their numbers."""
    if isinstance(source, (str, Path)):
        filename = filename or Path(source).name
        data = Path(source).read_bytes()
    else:
        data = bytes(source)
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xlsm")):
        try:
            raw = pd.read_excel(io.BytesIO(data), dtype=object, header=0, engine="openpyxl")
        except Exception as exc:  # openpyxl raises many kinds on a damaged file
            raise ValidationError(f"{filename} is not a readable Excel file ({exc}).") from None
    elif name.endswith((".csv", ".txt", ".tsv")) or not name:
        raw = _read_csv(data, filename or "the file")
    else:
        raise ValidationError(f"{filename}: only .csv and .xlsx files can be imported.")
    raw.columns = [_cell(c) for c in raw.columns]
    df = raw.map(_cell) if len(raw) else raw.astype(object)
    df.index = pd.RangeIndex(2, 2 + len(df), name="row")
    blank = (df == "").all(axis=1) if len(df.columns) else pd.Series(True, index=df.index)
    return df[~blank]


def _read_csv(data: bytes, filename: str) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheets saved by older Excel on Windows are cp1252/latin-1; latin-1 never fails.
        text = data.decode("latin-1")
    if not text.strip():
        raise ValidationError(f"{filename} is empty.")
    # The header line decides: headers rarely hold a delimiter, while notes often hold ';' or ','
    # (csv.Sniffer, reading the whole sample, is misled by them).
    header = text.lstrip("\r\n").splitlines()[0]
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise ValidationError(f"{filename} is not a readable CSV file ({exc}).") from None


def _cell(value: Any) -> str:
    """A spreadsheet cell as stripped text (Excel dates and whole numbers made readable)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, (pd.Timestamp, datetime)):
        if (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
        return ""
    # Collapse runs of spaces but keep line breaks (notes may have paragraphs).
    lines = [" ".join(line.split()) for line in str(value).replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip()


def file_hash(data: bytes) -> str:
    """sha256 of the file's bytes (an ImportBatch remembers it)."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# Header mapping


def _key(text: str) -> str:
    """Header spelling forgiven: case, spacing, punctuation; '&' reads as 'and'."""
    text = str(text).lower().replace("&", " and ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _squash(text: str) -> str:
    return "".join(w for w in _key(text).split() if w != "and")


@dataclass
class Mapping:
    """How the file's headers are read: domain columns, field columns, and headers not understood."""

    domain_columns: dict[str, str] = field(default_factory=dict)  # header -> domain code
    roles: dict[str, str] = field(default_factory=dict)  # header -> field (date, teacher, ...)
    unknown: list[str] = field(default_factory=list)

    def target(self, header: str) -> str:
        """What `header` is read as: a domain code, a field name, or 'ignore'."""
        return self.domain_columns.get(header) or self.roles.get(header) or IGNORE


def _missing_fields(mapping: Mapping, kind: str) -> list[str]:
    """The fields an import of `kind` needs that no header is read as."""
    read_as = set(mapping.roles.values())
    return [f for f in REQUIRED[kind] if f not in read_as]


def current_rubric(session: Session) -> tuple[RubricVersion, list[Domain]]:
    """The current rubric version and its domains (retired ones included), in order."""
    rv = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).first()  # noqa: E712
    if rv is None:
        raise ValidationError("There is no rubric yet; set one up before importing observations.")
    domains = session.exec(
        select(Domain).where(Domain.rubric_version_id == rv.id).order_by(Domain.position, Domain.id)
    ).all()
    return rv, list(domains)


def propose_mapping(headers: list[str], session: Session, kind: str = "observations") -> Mapping:
    """Match headers to fields and (for observations) to the current rubric's domains by code
    or name; headers matching nothing are listed as unknown."""
    _check_kind(kind)
    domains: dict[str, str] = {}
    if kind == "observations":
        _, current = current_rubric(session)
        for d in current:
            domains.setdefault(_squash(d.code), d.code)
            domains.setdefault(_squash(d.name), d.code)
    spellings = {_squash(s): f for f, names in FIELDS[kind].items() for s in names}
    out = Mapping()
    taken: set[str] = set()
    for header in headers:
        k = _squash(header)
        if k in spellings and spellings[k] not in taken:
            out.roles[header] = spellings[k]
            taken.add(spellings[k])
        elif k in domains and domains[k] not in taken:
            out.domain_columns[header] = domains[k]
            taken.add(domains[k])
        else:
            out.unknown.append(header)
    return out


def mapping_targets(session: Session, kind: str) -> list[str]:
    """Every value a header can be mapped to: 'ignore', the fields, then the domain codes."""
    _check_kind(kind)
    codes = [d.code for d in current_rubric(session)[1]] if kind == "observations" else []
    return [IGNORE, *FIELDS[kind], *codes]


def override_mapping(mapping: Mapping, overrides: dict[str, str], *, session: Session, kind: str) -> Mapping:
    """`mapping` with `{header: target}` applied; a target is a domain code, a field or 'ignore'."""
    targets = {t.lower(): t for t in mapping_targets(session, kind)}
    known_codes = set(mapping_targets(session, kind)) - set(FIELDS[kind]) - {IGNORE}
    out = Mapping(dict(mapping.domain_columns), dict(mapping.roles), list(mapping.unknown))
    for header, target in overrides.items():
        real = targets.get(str(target).strip().lower())
        if real is None:
            raise ValidationError(
                f"Column {header!r} cannot be read as {target!r}; choose one of {', '.join(targets.values())}."
            )
        out.domain_columns.pop(header, None)
        out.roles.pop(header, None)
        if header in out.unknown:
            out.unknown.remove(header)
        # One column per target: a new choice replaces an earlier column read the same way.
        for h, t in list(out.domain_columns.items()) + list(out.roles.items()):
            if t == real:
                out.domain_columns.pop(h, None)
                out.roles.pop(h, None)
                out.unknown.append(h)
        if real in known_codes:
            out.domain_columns[header] = real
        elif real != IGNORE:
            out.roles[header] = real
    return out


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """['HEADER=TARGET', ...] (the CLI's --map) as a dict."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        header, sep, target = pair.partition("=")
        if not sep or not header.strip():
            raise ValidationError(f"--map expects HEADER=DOMAINCODE, got {pair!r}.")
        out[header.strip()] = target.strip()
    return out


# --------------------------------------------------------------------------------------------
# Dates

_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for m in names
}
_TIME = r"(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([ap]\.?m\.?)?)?"
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME + r"$", re.I)
_NUMERIC = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})" + _TIME + r"$", re.I)
_MONTH_FIRST = re.compile(r"^([a-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})" + _TIME + r"$", re.I)
_DAY_FIRST = re.compile(r"^(\d{1,2}) ([a-z]+)\.?,? (\d{4})" + _TIME + r"$", re.I)


def parse_when(text: str) -> tuple[datetime | None, str]:
    """A school-local datetime from the many ways spreadsheets write dates, and a note (a warning
    such as an ambiguous day/month, or why the text could not be read). No time means noon."""
    s = " ".join(str(text).replace(",", ", ").split()).strip()
    s = s.replace(" ,", ",")
    note = ""
    m = _ISO.match(s)
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
        t = m.groups()[3:]
    elif m := _NUMERIC.match(s):
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        y = y + 2000 if y < 100 else y
        if a > 12 and b <= 12:
            d, mo = a, b
        else:
            mo, d = a, b
            if a != b and a <= 12 and b <= 12:
                note = f"{m[1]}/{m[2]} could be day/month; read as month/day (US): {_month_name(mo)} {d}"
        t = m.groups()[3:]
    elif (m := _MONTH_FIRST.match(s)) and m[1].lower() in _MONTHS:
        mo, d, y = _MONTHS[m[1].lower()], int(m[2]), int(m[3])
        t = m.groups()[3:]
    elif (m := _DAY_FIRST.match(s)) and m[2].lower() in _MONTHS:
        d, mo, y = int(m[1]), _MONTHS[m[2].lower()], int(m[3])
        t = m.groups()[3:]
    else:
        return None, f"cannot read the date {text!r}"
    try:
        day = date(y, mo, d)
        clock = _clock(*t)
    except ValueError:
        return None, f"cannot read the date {text!r}"
    return datetime.combine(day, clock), note


def _clock(hh: str | None, mm: str | None, ss: str | None, ampm: str | None) -> time:
    if hh is None:
        return time(12, 0)
    h = int(hh)
    if ampm:
        if not 1 <= h <= 12:
            raise ValueError("hour")
        h = h % 12 + (12 if ampm.lower().startswith("p") else 0)
    return time(h, int(mm), int(ss or 0))


def _month_name(mo: int) -> str:
    return date(2000, mo, 1).strftime("%b")


# --------------------------------------------------------------------------------------------
# Planning


@dataclass
class PlanRow:
    """One spreadsheet row in a dry run: what will happen to it and why it cannot (problems)."""

    row: int
    action: str  # create / exists / error
    summary: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportPlan:
    """A dry run: per row what will be created, every problem with its row number, and counts."""

    kind: str
    filename: str
    file_hash: str
    mapping: Mapping
    rows: list[PlanRow] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[tuple[int, str]]:
        """(row number, problem) for every problem; file-level ones are reported on row 1."""
        out = [(1, p) for p in self.file_problems]
        out += [(r.row, p) for r in self.rows for p in r.problems]
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> dict[str, int]:
        """Counts: rows read, rows to create, rows already present, rows with problems, problems."""
        return {
            "rows": len(self.rows),
            "create": sum(r.action == "create" for r in self.rows),
            "exists": sum(r.action == "exists" for r in self.rows),
            "error": sum(r.action == "error" for r in self.rows),
            "problems": len(self.problems),
            "new_schools": len(
                {r.payload.get("new_school") for r in self.rows if r.payload.get("new_school")}
            ),
        }

    def table(self) -> pd.DataFrame:
        """The dry run as a table: row, action, what, problems, warnings."""
        records = [
            {"row": 1, "action": "error", "what": "(whole file)", "problems": p, "warnings": ""}
            for p in self.file_problems
        ]
        records += [
            {
                "row": r.row,
                "action": r.action,
                "what": r.summary,
                "problems": "; ".join(r.problems),
                "warnings": "; ".join(r.warnings),
            }
            for r in self.rows
        ]
        return pd.DataFrame.from_records(records, columns=["row", "action", "what", "problems", "warnings"])


@dataclass
class ImportResult:
    """What an apply created (per entity), how many rows were already present, and its batch."""

    created: dict[str, int]
    skipped: int
    batch_id: int | None

    @property
    def total_created(self) -> int:
        return sum(self.created.values())


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValidationError(f"Unknown import kind {kind!r}; choose roster or observations.")


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def plan_import(
    *,
    session: Session,
    user: User,
    df: pd.DataFrame,
    kind: str,
    mapping: Mapping | None = None,
    filename: str = "",
    data_hash: str = "",
) -> ImportPlan:
    """Dry run: what each row would create and every problem, by spreadsheet row. Writes nothing."""
    access.require_role(user, "admin")
    _check_kind(kind)
    mapping = mapping or propose_mapping(list(df.columns), session, kind)
    if not data_hash:
        data_hash = file_hash(df.to_csv().encode())
    plan = ImportPlan(kind=kind, filename=filename, file_hash=data_hash, mapping=mapping)
    cols = {f: h for h, f in mapping.roles.items()}
    missing = _missing_fields(mapping, kind)
    for f in missing:
        plan.file_problems.append(f"no column is read as {f!r} (map one of the headers to it)")
    if kind == "observations" and not mapping.domain_columns:
        plan.file_problems.append("no column matches a rubric domain")
    for header in mapping.unknown:
        plan.notes.append(f"column {header!r} matches nothing and is ignored")
    if missing:
        return plan
    if kind == "roster":
        _plan_roster(session, df, cols, plan)
    else:
        _plan_observations(session, df, cols, mapping, plan)
    return plan


def _users_by_name(session: Session, roles: tuple[str, ...]) -> dict[str, list[User]]:
    out: dict[str, list[User]] = {}
    for u in session.exec(select(User).where(User.role.in_(roles), User.active == True)).all():  # noqa: E712
        for k in {_norm(u.username), _norm(u.display_name)}:
            out.setdefault(k, []).append(u)
    return out


def _find_user(index: dict[str, list[User]], text: str, what: str, problems: list[str]) -> User | None:
    found = {u.id: u for u in index.get(_norm(text), [])}
    if not found:
        problems.append(f"unknown {what} {text!r}")
        return None
    if len(found) > 1:
        problems.append(f"{what} {text!r} matches several users; use the username")
        return None
    return next(iter(found.values()))


def _plan_roster(session: Session, df: pd.DataFrame, cols: dict[str, str], plan: ImportPlan) -> None:
    schools: dict[str, School] = {}
    for s in session.exec(select(School)).all():
        schools[_norm(s.name)] = s
        schools.setdefault(_norm(s.code), s)
    coaches = _users_by_name(session, ("coach", "admin"))
    teachers = {(_norm(t.name), t.school_id) for t in session.exec(select(Teacher)).all()}
    seen: dict[tuple[str, str], int] = {}

    def get(row: pd.Series, f: str) -> str:
        return row[cols[f]] if f in cols else ""

    for rownum, row in df.iterrows():
        problems: list[str] = []
        name, school_name, grade = get(row, "teacher"), get(row, "school"), get(row, "grade")
        email, coach_text = get(row, "email"), get(row, "coach")
        for f, v in (("teacher", name), ("school", school_name), ("grade", grade)):
            if not v:
                problems.append(f"{f} is blank")
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            problems.append(f"email {email!r} does not look like an email address")
        if len(name) > 200 or len(school_name) > 200 or len(grade) > 32:
            problems.append("a value is too long (names 200 characters, grade 32)")
        coach = _find_user(coaches, coach_text, "coach", problems) if coach_text else None
        key = (_norm(name), _norm(school_name))
        if name and school_name:
            if key in seen:
                problems.append(f"duplicate of row {seen[key]}")
            else:
                seen[key] = int(rownum)
        school = schools.get(_norm(school_name))
        exists = school is not None and (_norm(name), school.id) in teachers
        payload = {
            "name": name,
            "school": school.name if school else school_name,
            "school_id": school.id if school else None,
            "new_school": None if school or not school_name else school_name,
            "grade_band": grade,
            "subject": get(row, "subject"),
            "email": email,
            "coach_id": coach.id if coach else None,
        }
        if problems:
            action, summary = "error", f"teacher {name or '?'}"
        elif exists:
            action, summary = "exists", f"teacher {name} at {school.name} already exists"
        else:
            action = "create"
            summary = f"teacher {name} at {payload['school']}" + (" (new school)" if school is None else "")
            if coach:
                summary += f", coach {coach.display_name}"
        plan.rows.append(PlanRow(int(rownum), action, summary, problems, [], payload))


def observation_token(teacher_id: int, observed_at: datetime, observer_id: int, block_id: int) -> str:
    """The deterministic client_token of an imported observation, so a re-import finds it."""
    raw = f"{teacher_id}|{as_utc(observed_at).isoformat()}|{observer_id}|{block_id}"
    return "import:" + hashlib.sha256(raw.encode()).hexdigest()


def _plan_observations(
    session: Session, df: pd.DataFrame, cols: dict[str, str], mapping: Mapping, plan: ImportPlan
) -> None:
    _, domains = current_rubric(session)
    domain_by_code = {d.code: d for d in domains}
    teachers: dict[str, list[Teacher]] = {}
    for t in session.exec(select(Teacher)).all():
        teachers.setdefault(_norm(t.name), []).append(t)
    observers = _users_by_name(session, ("coach", "admin"))
    school_names = {s.id: (_norm(s.name), _norm(s.code)) for s in session.exec(select(School)).all()}
    blocks: dict[str, Block] = {}
    all_blocks = session.exec(select(Block).order_by(Block.position, Block.id)).all()
    for b in all_blocks:
        blocks[_norm(b.name)] = b
        blocks.setdefault(_norm(b.code), b)
    default_block = next((b for b in all_blocks if b.active), None)
    if "block" not in cols:
        if default_block is None:
            plan.file_problems.append("there is no block column and no instructional block exists")
            return
        plan.notes.append(f"no block column: every observation is recorded in {default_block.name!r}")
    library = {_norm(s.title): s for s in session.exec(select(LibraryStep)).all()}
    existing = set(
        session.exec(select(Observation.client_token).where(Observation.client_token.like("import:%"))).all()
    )
    today = datetime.now(UTC).astimezone(school_tz()).date()
    seen: dict[str, int] = {}

    for rownum, row in df.iterrows():
        problems: list[str] = []
        warnings: list[str] = []
        text = {f: row[h] for f, h in cols.items()}
        for f in ("date", "teacher", "observer") + (("block",) if "block" in cols else ()):
            if not text.get(f):
                problems.append(f"{f} is blank")
        when = None
        if text.get("date"):
            when, note = parse_when(text["date"])
            if when is None:
                problems.append(note)
            else:
                if note:
                    warnings.append(note)
                if when.date() > today:
                    problems.append(f"date {text['date']!r} is in the future")
        teacher = None
        if text.get("teacher"):
            found = teachers.get(_norm(text["teacher"]), [])
            if len(found) > 1 and text.get("school"):
                found = [t for t in found if _norm(text["school"]) in school_names.get(t.school_id, ())]
            if not found:
                problems.append(f"unknown teacher {text['teacher']!r}")
            elif len(found) > 1:
                problems.append(f"several teachers are named {text['teacher']!r}; add a school column")
            else:
                teacher = found[0]
        observer = (
            _find_user(observers, text["observer"], "observer", problems) if text.get("observer") else None
        )
        block = default_block if "block" not in cols else None
        if text.get("block"):
            block = blocks.get(_norm(text["block"]))
            if block is None:
                problems.append(f"unknown block {text['block']!r}")
        scores: dict[str, int | None] = {}
        for header, code in mapping.domain_columns.items():
            value = row[header]
            if value == "":
                continue
            if _norm(value) in NOT_OBSERVED:
                scores[code] = None
                continue
            try:
                number = float(value)
            except ValueError:
                problems.append(f"{code} score {value!r} is not a number")
                continue
            if not number.is_integer() or not 1 <= number <= 4:
                problems.append(f"{code} score {value!r} is out of range (1-4)")
                continue
            scores[code] = int(number)
        step_text = text.get("step", "")
        dup_key = "|".join(
            [
                str(teacher.id) if teacher else _norm(text.get("teacher", "")),
                when.isoformat() if when else _norm(text.get("date", "")),
                str(observer.id) if observer else _norm(text.get("observer", "")),
                str(block.id) if block else _norm(text.get("block", "")),
            ]
        )
        if dup_key in seen:
            problems.append(f"duplicate of row {seen[dup_key]}")
        else:
            seen[dup_key] = int(rownum)
        token = (
            observation_token(teacher.id, when, observer.id, block.id)
            if teacher and when and observer and block
            else ""
        )
        label = (
            f"{text.get('teacher') or '?'} on {when.date().isoformat() if when else text.get('date') or '?'}"
        )
        payload: dict[str, Any] = {}
        if problems:
            action, summary = "error", f"observation of {label}"
        elif token in existing:
            action, summary = "exists", f"observation of {label} was imported before"
        else:
            action = "create"
            numeric = sum(v is not None for v in scores.values())
            summary = f"observation of {label} by {observer.display_name}, {numeric} scores"
            if step_text:
                summary += ", 1 action step"
            lib = library.get(_norm(step_text)) if step_text else None
            payload = {
                "token": token,
                "teacher_id": teacher.id,
                "observer_id": observer.id,
                "block_id": block.id,
                "observed_at": as_utc(when).isoformat(),
                "notes": text.get("notes", ""),
                "scores": {c: (v, domain_by_code[c].id) for c, v in scores.items()},
                "step": step_text,
                "library_step_id": lib.id if lib else None,
                "step_domain": lib.domain_code if lib else "",
                "step_title": lib.title if lib else "",
            }
        plan.rows.append(PlanRow(int(rownum), action, summary, problems, warnings, payload))


# --------------------------------------------------------------------------------------------
# Applying


def apply_import(*, session: Session, user: User, plan: ImportPlan) -> ImportResult:
    """Create what the plan says in one transaction, or nothing: a plan with problems is refused.
    Rows already imported (same client token, same teacher at the same school) are skipped."""
    access.require_role(user, "admin")
    if plan.problems:
        n = len(plan.problems)
        raise ValidationError(
            f"The file has {n} problem{'s' if n != 1 else ''}; nothing was imported. "
            "Fix the rows listed in the dry run and try again."
        )
    try:
        if plan.kind == "roster":
            created, skipped = _apply_roster(session, user, plan)
        else:
            created, skipped = _apply_observations(session, user, plan)
        batch_id = None
        if any(created.values()):
            batch = ImportBatch(
                kind=plan.kind,
                file_hash=plan.file_hash,
                filename=plan.filename[:300],
                rows=len(plan.rows),
                created=sum(created.values()),
                by_user_id=user.id,
            )
            session.add(batch)
            session.flush()
            batch_id = batch.id
            audit.record(
                session,
                by=user,
                action="import",
                entity="import_batch",
                entity_id=batch.id,
                detail={"kind": plan.kind, "file": plan.filename, "hash": plan.file_hash, **created},
            )
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.info("Imported %s %s: created %s, skipped %d", plan.kind, plan.filename, created, skipped)
    return ImportResult(created=created, skipped=skipped, batch_id=batch_id)


def _school_code(name: str, taken: set[str]) -> str:
    base = "".join(w[0] for w in re.findall(r"[A-Za-z0-9]+", name)).upper()[:8] or "SCH"
    code, n = base, 2
    while code.casefold() in taken:
        code, n = f"{base}{n}", n + 1
    taken.add(code.casefold())
    return code


def _apply_roster(session: Session, user: User, plan: ImportPlan) -> tuple[dict[str, int], int]:
    created = {"schools": 0, "teachers": 0}
    skipped = 0
    all_schools = session.exec(select(School)).all()
    schools = {_norm(s.name): s for s in all_schools}
    codes = {s.code.casefold() for s in all_schools}
    for s in all_schools:
        schools.setdefault(_norm(s.code), s)
    teachers = {(_norm(t.name), t.school_id) for t in session.exec(select(Teacher)).all()}
    links = {(u, s) for u, s in session.exec(select(UserSchool.user_id, UserSchool.school_id)).all()}
    for r in plan.rows:
        if r.action != "create":
            skipped += 1
            continue
        p = r.payload
        school = schools.get(_norm(p["school"]))
        if school is None:
            school = School(code=_school_code(p["school"], codes), name=p["school"])
            session.add(school)
            session.flush()
            schools[_norm(school.name)] = school
            created["schools"] += 1
            audit.record(
                session,
                by=user,
                action="create",
                entity="school",
                entity_id=school.id,
                detail={"name": school.name, "code": school.code, "import_row": r.row},
            )
        if (_norm(p["name"]), school.id) in teachers:
            skipped += 1
            continue
        t = Teacher(
            name=p["name"],
            email=p["email"],
            school_id=school.id,
            grade_band=p["grade_band"],
            subject=p["subject"],
            coach_id=p["coach_id"],
        )
        session.add(t)
        session.flush()
        teachers.add((_norm(t.name), school.id))
        created["teachers"] += 1
        audit.record(
            session,
            by=user,
            action="create",
            entity="teacher",
            entity_id=t.id,
            detail={
                "name": t.name,
                "school_id": school.id,
                "grade_band": t.grade_band,
                "coach_id": t.coach_id,
                "import_row": r.row,
            },
        )
        if p["coach_id"] and (p["coach_id"], school.id) not in links:
            # The coach belongs to the school of every teacher they coach (aggregate views).
            session.add(UserSchool(user_id=p["coach_id"], school_id=school.id))
            links.add((p["coach_id"], school.id))
            audit.record(
                session,
                by=user,
                action="create",
                entity="user_school",
                entity_id=p["coach_id"],
                detail={"user_id": p["coach_id"], "school_id": school.id, "import_row": r.row},
            )
    return created, skipped


def _apply_observations(session: Session, user: User, plan: ImportPlan) -> tuple[dict[str, int], int]:
    # Bulk statements (executemany with RETURNING) rather than one ORM flush per row: a school
    # year of history (~1,800 rows, ~15,000 scores) loads in about a second instead of ~20.
    rv, _ = current_rubric(session)
    todo = [r for r in plan.rows if r.action == "create"]
    existing: set[str] = set()
    tokens = [r.payload["token"] for r in todo]
    for i in range(0, len(tokens), 500):
        chunk = tokens[i : i + 500]
        existing |= set(
            session.exec(select(Observation.client_token).where(Observation.client_token.in_(chunk)))
        )
    fresh = [r for r in todo if r.payload["token"] not in existing]
    skipped = len(plan.rows) - len(fresh)
    created = {"observations": len(fresh), "scores": 0, "action_steps": 0}
    if not fresh:
        return created, skipped
    teachers = {t.id: t for t in session.exec(select(Teacher)).all()}
    check_back = timedelta(days=get_settings().check_back_days)
    now = datetime.now(UTC)

    # Building one SQLModel object per row costs ~0.5 ms; copy a template's defaults instead.
    obs_template = Observation(
        teacher_id=0,
        observer_id=0,
        observed_at=now,
        block_id=0,
        rubric_version_id=rv.id,
        school_id=0,
        grade_band="",
    ).model_dump(exclude={"id"})
    obs_rows = []
    for r in fresh:
        p = r.payload
        teacher = teachers[p["teacher_id"]]
        obs_rows.append(
            {
                **obs_template,
                "teacher_id": teacher.id,
                "observer_id": p["observer_id"],
                "observed_at": datetime.fromisoformat(p["observed_at"]),
                "block_id": p["block_id"],
                "notes": p["notes"],
                "school_id": teacher.school_id,
                "grade_band": teacher.grade_band,
                "client_token": p["token"],
                "created_at": now,
                "updated_at": now,
            }
        )
    ids: dict[str, int] = {}
    for i in range(0, len(obs_rows), 1000):
        returned = session.execute(
            insert(Observation).returning(Observation.id, Observation.client_token), obs_rows[i : i + 1000]
        ).all()
        ids.update({token: oid for oid, token in returned})

    step_template = ActionStep(
        teacher_id=0, title="", assigned_by=0, assigned_at=now, check_back_on=now.date(), updated_at=now
    ).model_dump(exclude={"id"})
    score_rows, step_rows = [], []
    for r, o in zip(fresh, obs_rows, strict=True):
        p, oid, when = r.payload, ids[o["client_token"]], o["observed_at"]
        for code, (score, domain_id) in p["scores"].items():
            score_rows.append(
                {
                    "observation_id": oid,
                    "domain_id": domain_id,
                    "domain_code": code,
                    "score": score,
                    "evidence": "",
                    "teacher_id": o["teacher_id"],
                    "school_id": o["school_id"],
                    "grade_band": o["grade_band"],
                    "observer_id": o["observer_id"],
                    "block_id": o["block_id"],
                    "rubric_version_id": rv.id,
                    "observed_at": when,
                    "month": month_key(when),
                }
            )
        if p["step"]:
            # History is imported as it was: the open-step cap applies to new assignments only.
            custom = p["step"]
            title = p.get("step_title") or (
                custom[:TITLE_CHARS].rstrip() + ("…" if len(custom) > TITLE_CHARS else "")
            )
            step_rows.append(
                {
                    **step_template,
                    "teacher_id": o["teacher_id"],
                    "observation_id": oid,
                    "library_step_id": p["library_step_id"],
                    "domain_code": p["step_domain"],
                    "title": title[:200],
                    "custom_text": "" if p["library_step_id"] else custom,
                    "assigned_by": p["observer_id"],
                    "assigned_at": when,
                    "check_back_on": local_date(when) + check_back,
                }
            )
    for i in range(0, len(score_rows), 5000):
        session.execute(insert(DomainScore), score_rows[i : i + 5000])
    step_ids: list[tuple[int, int]] = []
    for i in range(0, len(step_rows), 1000):
        step_ids += session.execute(
            insert(ActionStep).returning(ActionStep.id, ActionStep.observation_id), step_rows[i : i + 1000]
        ).all()
    created["scores"], created["action_steps"] = len(score_rows), len(step_rows)
    if step_ids:
        at = {o_id: when for o_id, when in ((ids[o["client_token"]], o["observed_at"]) for o in obs_rows)}
        events = [
            {"step_id": sid, "at": at[oid], "from_state": "", "to_state": "open", "cause": "imported"}
            for sid, oid in step_ids
        ]
        session.execute(insert(StepEvent), events)

    by_token = {r.payload["token"]: r for r in fresh}
    for o in obs_rows:
        r = by_token[o["client_token"]]
        audit.record(
            session,
            by=user,
            action="create",
            entity="observation",
            entity_id=ids[o["client_token"]],
            detail={
                "teacher_id": o["teacher_id"],
                "observed_at": o["observed_at"],
                "import_row": r.row,
                "scores": {c: v for c, (v, _) in r.payload["scores"].items()},
                "action_step": r.payload["step"] or None,
            },
        )
    return created, skipped


def plan_file(
    *,
    session: Session,
    user: User,
    source: str | Path | bytes,
    filename: str,
    kind: str,
    overrides: dict[str, str] | None = None,
) -> ImportPlan:
    """Read a file, map its headers (with the user's overrides) and dry-run it: the one call a
    page or the CLI makes before `apply_import`."""
    access.require_role(user, "admin")
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    df = read_table(data, filename)
    mapping = propose_mapping(list(df.columns), session, kind)
    if overrides:
        mapping = override_mapping(mapping, overrides, session=session, kind=kind)
    return plan_import(
        session=session,
        user=user,
        df=df,
        kind=kind,
        mapping=mapping,
        filename=filename,
        data_hash=file_hash(data),
    )


def describe_result(result: ImportResult) -> str:
    """One sentence for the page and the CLI."""
    made = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in result.created.items() if n)
    text = f"Created {made}." if made else "Nothing new to create: everything in the file is already here."
    if result.skipped:
        text += f" {result.skipped} row{'s' if result.skipped != 1 else ''} already present."
    return text


def plan_json(plan: ImportPlan) -> str:
    """The dry run as JSON (for logs and the CLI's --json)."""
    return json.dumps(
        {"summary": plan.summary, "problems": plan.problems, "notes": plan.notes}, default=str, sort_keys=True
    )


def other_kinds_that_fit(headers: list[str], session: Session, kind: str) -> list[str]:
    """The import kinds other than `kind` whose every needed column the headers hold (to suggest
    the right kind when a file was uploaded as the wrong one)."""
    out = []
    for other in KINDS:
        if other == kind:
            continue
        try:
            mapping = propose_mapping(headers, session, other)
        except CoachloopError:  # e.g. no rubric yet: no observations import can fit
            continue
        if not _missing_fields(mapping, other):
            out.append(other)
    return out
