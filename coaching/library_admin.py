"""The action-step library editor: admins add, edit and retire moves; coaches propose moves that
an admin approves (-> active) or declines (-> retired).

Assigned steps copy the move's title and keep `library_step_id`, so editing or retiring a move
never changes a step a teacher is already working on.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from coaching import access, audit
from coaching.errors import NotFound, ValidationError
from db.models import Domain, LibraryStep, RubricVersion, User

log = logging.getLogger(__name__)
STATUSES = ("active", "proposed", "retired")


def list_moves(
    *, session: Session, user: User, statuses: tuple[str, ...] = ("active",), domain_code: str | None = None
) -> list[LibraryStep]:
    """Library moves by domain and title. Coaches see active moves and their own proposals;
    admins see every status they ask for."""
    access.require_role(user, "admin", "leader", "coach")
    if user.role == "admin":
        stmt = select(LibraryStep).where(LibraryStep.status.in_(statuses))
    else:
        allowed = []
        if "active" in statuses:
            allowed.append(LibraryStep.status == "active")
        if "proposed" in statuses:
            allowed.append(and_(LibraryStep.status == "proposed", LibraryStep.proposed_by == user.id))
        if not allowed:
            return []
        stmt = select(LibraryStep).where(or_(*allowed))
    if domain_code:
        stmt = stmt.where(LibraryStep.domain_code == domain_code)
    return list(session.exec(stmt.order_by(LibraryStep.domain_code, LibraryStep.code)).all())


def _active_domain_codes(session: Session) -> set[str]:
    rv = session.exec(select(RubricVersion).where(RubricVersion.is_current == True)).first()  # noqa: E712
    if rv is None:
        return set()
    rows = session.exec(
        select(Domain.code).where(Domain.rubric_version_id == rv.id, Domain.retired == False)  # noqa: E712
    ).all()
    return set(rows)


def _clean(session: Session, domain_code: str, title: str, move: str, look_for: str, *, skip_id: int | None):
    domain_code = (domain_code or "").strip().upper()
    title = " ".join((title or "").split())
    move = (move or "").strip()
    look_for = (look_for or "").strip()
    if domain_code not in _active_domain_codes(session):
        raise ValidationError(
            f"{domain_code or 'The domain'} is not an active rubric domain.", field="domain_code"
        )
    if not title:
        raise ValidationError("The title is empty.", field="title")
    if len(title) > 200:
        raise ValidationError("The title is longer than 200 characters.", field="title")
    if not move:
        raise ValidationError("Describe the move: what the teacher does.", field="move")
    clash = session.exec(
        select(LibraryStep).where(
            LibraryStep.domain_code == domain_code,
            LibraryStep.status.in_(("active", "proposed")),
            LibraryStep.id != (skip_id or -1),
        )
    ).all()
    if any(s.title.casefold() == title.casefold() for s in clash):
        raise ValidationError(f"{domain_code} already has a move titled {title!r}.", field="title")
    return domain_code, title, move, look_for


def _next_code(session: Session, domain_code: str) -> str:
    taken = set(session.exec(select(LibraryStep.code)).all())
    numbers = [int(m[1]) for c in taken if (m := re.fullmatch(rf"{re.escape(domain_code)}-(\d+)", c))]
    n = max(numbers, default=0) + 1
    while f"{domain_code}-{n}" in taken:
        n += 1
    return f"{domain_code}-{n}"


def _create(session: Session, by: User, status: str, domain_code, title, move, look_for) -> LibraryStep:
    domain_code, title, move, look_for = _clean(session, domain_code, title, move, look_for, skip_id=None)
    step = LibraryStep(
        code=_next_code(session, domain_code),
        domain_code=domain_code,
        title=title,
        move=move,
        look_for=look_for,
        status=status,
        proposed_by=by.id,
    )
    session.add(step)
    session.flush()
    audit.record(
        session,
        by=by,
        action="propose" if status == "proposed" else "create",
        entity="library_step",
        entity_id=step.id,
        detail={"code": step.code, "domain": domain_code, "title": title, "status": status},
    )
    session.commit()
    return step


def add_move(
    *, session: Session, by: User, domain_code: str, title: str, move: str, look_for: str = ""
) -> LibraryStep:
    """Add an active move to the library (admin)."""
    access.require_role(by, "admin")
    return _create(session, by, "active", domain_code, title, move, look_for)


def propose_move(
    *, session: Session, by: User, domain_code: str, title: str, move: str, look_for: str = ""
) -> LibraryStep:
    """A coach (or admin) proposes a move; it is not offered to coaches until an admin approves it."""
    access.require_role(by, "admin", "coach")
    return _create(session, by, "proposed", domain_code, title, move, look_for)


def _get(session: Session, move_id: int) -> LibraryStep:
    step = session.get(LibraryStep, move_id)
    if step is None:
        raise NotFound("That library move does not exist.")
    return step


def edit_move(
    *,
    session: Session,
    by: User,
    move_id: int,
    title: str | None = None,
    move: str | None = None,
    look_for: str | None = None,
    domain_code: str | None = None,
) -> LibraryStep:
    """Edit a move's wording (admin). Steps already assigned keep the title they were given."""
    access.require_role(by, "admin")
    step = _get(session, move_id)
    old = {"domain_code": step.domain_code, "title": step.title, "move": step.move, "look_for": step.look_for}
    new_values = _clean(
        session,
        step.domain_code if domain_code is None else domain_code,
        step.title if title is None else title,
        step.move if move is None else move,
        step.look_for if look_for is None else look_for,
        skip_id=step.id,
    )
    new = dict(zip(("domain_code", "title", "move", "look_for"), new_values, strict=True))
    diff = audit.changes(old, new)
    if not diff:
        return step
    for k, v in new.items():
        setattr(step, k, v)
    session.add(step)
    audit.record(session, by=by, action="update", entity="library_step", entity_id=step.id, detail=diff)
    session.commit()
    return step


def _set_status(
    session: Session, by: User, move_id: int, status: str, allowed_from: tuple[str, ...], verb: str
):
    step = _get(session, move_id)
    if step.status not in allowed_from:
        raise ValidationError(f"{step.title!r} is {step.status}; it cannot be {verb}.")
    old = step.status
    step.status = status
    session.add(step)
    audit.record(
        session,
        by=by,
        action="update",
        entity="library_step",
        entity_id=step.id,
        detail={"status": {"old": old, "new": status}, "verb": verb},
    )
    session.commit()
    return step


def retire_move(*, session: Session, by: User, move_id: int) -> LibraryStep:
    """Retire a move (admin): no longer offered; steps already assigned keep it."""
    access.require_role(by, "admin")
    return _set_status(session, by, move_id, "retired", ("active",), "retired")


def restore_move(*, session: Session, by: User, move_id: int) -> LibraryStep:
    """Bring a retired move back (admin)."""
    access.require_role(by, "admin")
    return _set_status(session, by, move_id, "active", ("retired",), "restored")


def approve_move(*, session: Session, by: User, move_id: int) -> LibraryStep:
    """Approve a coach's proposal (admin): it becomes an active move."""
    access.require_role(by, "admin")
    return _set_status(session, by, move_id, "active", ("proposed",), "approved")


def decline_move(*, session: Session, by: User, move_id: int) -> LibraryStep:
    """Decline a coach's proposal (admin): it is kept, retired, for the record."""
    access.require_role(by, "admin")
    return _set_status(session, by, move_id, "retired", ("proposed",), "declined")
