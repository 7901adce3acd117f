"""The rubric editor: publishing a new rubric version, and instructional blocks.

A published version is never edited: a change publishes version + 1 with every domain copied
(edited or not), and moves `is_current`. Old observations keep their rubric_version_id and their
scores; reports compare versions through the stable domain codes. A retired domain stays in the
new version (retired=True) so history still shows it, but new observations do not score it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, select

from coaching import access, audit
from coaching.errors import ValidationError
from db.models import Block, Domain, RubricVersion, User, utcnow

log = logging.getLogger(__name__)
MIN_LOOK_FORS, MAX_LOOK_FORS = 2, 4
CODE_RE = re.compile(r"^[A-Z][A-Z0-9_-]{0,15}$")


@dataclass
class DomainEdit:
    """One domain as the editor submits it; `code` identifies it across versions."""

    code: str
    name: str
    description: str = ""
    look_fors: list[str] = field(default_factory=list)
    retired: bool = False

    @classmethod
    def from_domain(cls, d: Domain) -> DomainEdit:
        return cls(d.code, d.name, d.description, list(json.loads(d.look_fors or "[]")), d.retired)


def current_version(*, session: Session, user: User) -> RubricVersion:
    """The rubric version new observations are scored with."""
    access.require_role(user, "admin", "leader", "coach", "teacher")
    rv = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).first()  # noqa: E712
    if rv is None:
        raise ValidationError("No rubric has been set up yet.")
    return rv


def domains_of(*, session: Session, user: User, version_id: int) -> list[Domain]:
    """The domains of one rubric version (retired ones included), in order."""
    access.require_role(user, "admin", "leader", "coach", "teacher")
    return list(
        session.exec(
            select(Domain).where(Domain.rubric_version_id == version_id).order_by(Domain.position, Domain.id)
        ).all()
    )


def versions(*, session: Session, user: User) -> list[RubricVersion]:
    """Every published rubric version, newest first."""
    access.require_role(user, "admin", "leader", "coach", "teacher")
    return list(session.exec(select(RubricVersion).order_by(RubricVersion.version.desc())).all())


def current_edits(*, session: Session, user: User) -> list[DomainEdit]:
    """The current version's domains as editable values (the editor's starting point)."""
    rv = current_version(session=session, user=user)
    return [DomainEdit.from_domain(d) for d in domains_of(session=session, user=user, version_id=rv.id)]


def _clean(edit: DomainEdit) -> DomainEdit:
    return DomainEdit(
        code=(edit.code or "").strip().upper(),
        name=" ".join((edit.name or "").split()),
        description=(edit.description or "").strip(),
        look_fors=[" ".join(lf.split()) for lf in edit.look_fors if lf and lf.strip()],
        retired=bool(edit.retired),
    )


def validate(domains: list[DomainEdit]) -> list[DomainEdit]:
    """Cleaned edits, or ValidationError naming the first thing to fix."""
    cleaned = [_clean(d) for d in domains]
    seen_codes: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for d in cleaned:
        label = d.name or d.code or "a domain"
        if not d.code:
            raise ValidationError(f"{label}: the code is empty.", field="code")
        if not CODE_RE.match(d.code):
            raise ValidationError(
                f"{label}: the code {d.code!r} must start with a letter and use at most 16 letters, "
                "digits, '-' or '_'.",
                field="code",
            )
        if d.code in seen_codes:
            raise ValidationError(f"Two domains use the code {d.code!r}; codes must be unique.", field="code")
        seen_codes[d.code] = d.name
        if not d.name:
            raise ValidationError(f"Domain {d.code}: the name is empty.", field="name")
        if len(d.name) > 120:
            raise ValidationError(f"Domain {d.code}: the name is longer than 120 characters.", field="name")
        if d.name.casefold() in seen_names:
            raise ValidationError(
                f"Domains {seen_names[d.name.casefold()]} and {d.code} are both named {d.name!r}.",
                field="name",
            )
        seen_names[d.name.casefold()] = d.code
        if not d.retired and not MIN_LOOK_FORS <= len(d.look_fors) <= MAX_LOOK_FORS:
            raise ValidationError(
                f"Domain {d.code} ({d.name}) has {len(d.look_fors)} look-fors; "
                f"give {MIN_LOOK_FORS} to {MAX_LOOK_FORS}.",
                field="look_fors",
            )
    if not any(not d.retired for d in cleaned):
        raise ValidationError("At least one domain must stay active.")
    return cleaned


def publish_rubric(
    *, session: Session, by: User, domains: list[DomainEdit], name: str | None = None
) -> RubricVersion:
    """Publish `domains` as a new current rubric version (admin). Domains of the current version
    missing from `domains` are copied unchanged (a domain is retired, never deleted)."""
    access.require_role(by, "admin")
    current = current_version(session=session, user=by)
    old = domains_of(session=session, user=by, version_id=current.id)
    edits = validate(domains)
    given = {d.code for d in edits}
    edits += [DomainEdit.from_domain(d) for d in old if d.code not in given]
    name = " ".join((name or current.name).split())
    if not name:
        raise ValidationError("The rubric name is empty.", field="name")
    before = {d.code: DomainEdit.from_domain(d) for d in old}
    if name == current.name and list(before.values()) == edits:
        raise ValidationError("Nothing changed: there is no new version to publish.")

    top = session.exec(select(func.max(RubricVersion.version))).one() or 0
    current.is_current = False
    session.add(current)
    session.flush()
    rv = RubricVersion(version=top + 1, name=name, is_current=True, published_at=utcnow())
    session.add(rv)
    session.flush()
    changes: dict[str, str] = {}
    for position, e in enumerate(edits):
        session.add(
            Domain(
                rubric_version_id=rv.id,
                code=e.code,
                name=e.name,
                description=e.description,
                look_fors=json.dumps(e.look_fors),
                position=position,
                retired=e.retired,
            )
        )
        was = before.get(e.code)
        if was is None:
            changes[e.code] = "added"
        elif e.retired and not was.retired:
            changes[e.code] = "retired"
        elif was.retired and not e.retired:
            changes[e.code] = "restored"
        elif was != e:
            changes[e.code] = "edited"
    audit.record(
        session,
        by=by,
        action="create",
        entity="rubric_version",
        entity_id=rv.id,
        detail={"version": rv.version, "name": name, "previous": current.version, "domains": changes},
    )
    session.commit()
    log.info("Published rubric version %s (%s)", rv.version, changes)
    return rv


def add_block(*, session: Session, by: User, code: str, name: str) -> Block:
    """Add an instructional block (admin); codes and names are unique, case-insensitively."""
    access.require_role(by, "admin")
    code = (code or "").strip().upper()
    name = " ".join((name or "").split())
    if not code or not CODE_RE.match(code):
        raise ValidationError(
            "The block code must start with a letter and use at most 16 letters, digits, '-' or '_'.",
            field="code",
        )
    if not name:
        raise ValidationError("The block name is empty.", field="name")
    for b in session.exec(select(Block)).all():
        if b.code.upper() == code:
            raise ValidationError(f"A block with the code {code!r} exists already ({b.name}).", field="code")
        if b.name.casefold() == name.casefold():
            raise ValidationError(f"A block named {name!r} exists already.", field="name")
    position = (session.exec(select(func.max(Block.position))).one() or 0) + 1
    block = Block(code=code, name=name, position=position, active=True)
    session.add(block)
    session.flush()
    audit.record(
        session,
        by=by,
        action="create",
        entity="block",
        entity_id=block.id,
        detail={"code": code, "name": name},
    )
    session.commit()
    return block


def blocks(*, session: Session, user: User) -> list[Block]:
    """Every instructional block, in order."""
    access.require_role(user, "admin", "leader", "coach", "teacher")
    return list(session.exec(select(Block).order_by(Block.position, Block.id)).all())
